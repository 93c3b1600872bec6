"""ImageNet training and evaluation of the bl_keras image models (paper Appendix A.1).

    python -m train.imagenet --flagfile=configs/imagenet/bl_resnet50.flags \\
        --data_dir=/data/imagenet --model_dir=runs/bl_resnet50
    python -m train.imagenet --flagfile=configs/demo.flags          # generated data, 2 CPU cores
    python -m train.imagenet --flagfile=... --mode=eval --eval_from=runs/x/best.keras

Flags given on the command line override the flagfile; `--help` documents every flag.
The data splits the run reads are checked before anything is built (`--noeval` trains without
the validation split; `--mode=eval` reads only it), and <model_dir>/config.json keeps the run's
configuration (`bl_keras.training.model_dir`). At the end each worker prints
`global_step=<n> weights_fingerprint=<hash>`.
"""

import os
import sys

from absl import flags

from train import flags as train_flags
from bl_keras.training.task import ClassificationTask

FLAGS = flags.FLAGS
DATA_SOURCES = ("imagefolder", "tfrecord", "tfds", "idx", "decathlon", "demo")
SPLIT_NAMES = {"train": "training", "val": "validation"}
# The flags that are builder options; which of them a model takes, its registry entry says.
BUILDER_OPTION_FLAGS = ("alpha", "beta", "upsample", "merge", "branches", "num_merges",
                        "stage_depths", "stage_filters", "stem_filters")

train_flags.define_trainer_flags()
flags.DEFINE_string("model", None, "Model name (bl_keras.models.list_models()). Required.")
train_flags.define_builder_flags(BUILDER_OPTION_FLAGS)
flags.DEFINE_boolean("zero_init_residual", True, "Zero-initialise the last BN gamma of every "
                     "residual branch (released code).")
flags.DEFINE_enum("data_source", "imagefolder", list(DATA_SOURCES),
                  "imagefolder: <data_dir>/{train,val}/<class>/*; tfrecord: TF ImageNet shards "
                  "<data_dir>/{train,validation}-*; tfds: the --tfds_name dataset in <data_dir>; "
                  "idx: MNIST-format files <data_dir>/{train,t10k}-{images-idx3,labels-idx1}-"
                  "ubyte[.gz] (Fashion-MNIST, MNIST, KMNIST; grayscale, replicated to 3 "
                  "channels); decathlon: the Visual Decathlon devkit's <data_dir>/annotations/"
                  "<domain>_{train,val}.json and the images they name (--domain); demo: "
                  "generate the embedded demo set into <data_dir> and read it as imagefolder.")
flags.DEFINE_string("data_dir", None, "Dataset directory (see --data_source). Required.")
flags.DEFINE_string("domain", None, "decathlon: the Visual Decathlon domain (aircraft, "
                    "cifar100, daimlerpedcls, dtd, gtsrb, imagenet12, omniglot, svhn, ucf101, "
                    "vgg-flowers).")
flags.DEFINE_string("manual_dir", None, "tfds: directory holding the ImageNet tar files.")
flags.DEFINE_string("tfds_name", "imagenet2012", "tfds: the dataset (an image classification "
                    "set: imagenet2012, fashion_mnist, ...); val reads its validation split, "
                    "or its test split when it has none.")
flags.DEFINE_integer("label_offset", 1, "tfrecord: subtracted from image/class/label "
                     "(1 for the TF ImageNet export, whose label 0 is background).")
flags.DEFINE_integer("num_classes", 1000, "tfrecord: number of classes.")
flags.DEFINE_integer("image_size", 224, "Training/evaluation crop (256 for the @256 rows).")
flags.DEFINE_float("rotation_degrees", None, "Random rotation in training (default: 10 for "
                   "SE models as in the released script, else 0).")
flags.DEFINE_float("color_jitter", 0.4, "Brightness/contrast/saturation jitter strength.")
flags.DEFINE_float("min_crop_area", 0.08, "Smallest random-resized crop, as a fraction of the "
                   "image area.")
flags.DEFINE_float("eval_crop_fraction", 0.875, "Evaluation resizes the shorter side to "
                   "image_size / eval_crop_fraction, then centre crops (256 -> 224).")
flags.DEFINE_integer("shuffle_buffer", 10_000, "Shuffle buffer (examples).")
flags.DEFINE_boolean("cache_data", False, "Keep decoded images in memory (small datasets only).")
flags.DEFINE_list("classes", None, "Keep only these classes of the data (their label indices, "
                  "e.g. 0,1,2,3,4), relabelled 0, 1, ... in this order: pretrain on some classes, "
                  "transfer to the others.")
flags.DEFINE_integer("demo_train_per_class", 300, "demo: training images per class.")
flags.DEFINE_integer("demo_val_per_class", 60, "demo: validation images per class.")
flags.DEFINE_integer("demo_image_size", 64, "demo: side of the generated images.")


class ImageClassificationTask(ClassificationTask):
    """Builds a bl_keras image model and the tf.data pipelines of one data source."""

    name = "imagenet"

    def __init__(self, model, model_options, data_source, data_dir, image_size, rotation_degrees,
                 color_jitter=0.4, min_crop_area=0.08, eval_crop_fraction=0.875, manual_dir=None,
                 tfds_name="imagenet2012", label_offset=1, num_classes=1000,
                 shuffle_buffer=10_000, cache=False, seed=0, classes=None, domain=None,
                 splits=("train", "val"), train_split="train"):
        """`splits`: those the run reads, each checked here (a missing one is a `ConfigError`
        on --data_dir); the number of classes is the training split's (the validation split's
        when evaluating only). `train_split`: what training reads ("train+val": both)."""
        from bl_keras.data import build_dataset

        super().__init__()
        self.model_name = model
        self.model_options = dict(model_options)
        self.seed = seed
        self._data = dict(source_name="imagefolder" if data_source == "demo" else data_source,
                          data_dir=data_dir, image_size=image_size, manual_dir=manual_dir,
                          tfds_name=tfds_name, label_offset=label_offset,
                          num_classes=num_classes, cache=cache,
                          eval_crop_fraction=eval_crop_fraction,
                          classes=list(classes) if classes is not None else None)
        if data_source == "decathlon":
            self._data["domain"] = domain
        self._train_options = dict(rotation_degrees=rotation_degrees, color_jitter=color_jitter,
                                   min_crop_area=min_crop_area, shuffle_buffer=shuffle_buffer)
        self._build_dataset = build_dataset
        self._data_source = data_source
        self.train_split = train_split
        self.has_eval_data = "val" in splits
        probes = {split: self._check_split(split, training="train" in splits)
                  for split in splits}
        if "train" in probes:
            self.num_train_examples = probes["train"].num_examples
        self.num_classes = probes["train" if "train" in probes else "val"].num_classes

    def _check_split(self, split, training):
        """Read the listing of `split` (its files or shards and labels, not the images)."""
        try:
            return self._build_dataset(split=self.train_split if split == "train" else split,
                                       training=False, batch_size=1,
                                       seed=self.seed, **self._data)
        except (FileNotFoundError, ValueError) as err:
            message = f"{SPLIT_NAMES[split]} split: {str(err).splitlines()[0]}"
            if split == "val" and training:
                message += " (--noeval trains without validation)"
            raise train_flags.FlagError("data_dir", message) from None

    def model_config(self):
        options = train_flags.with_builder_defaults(self.model_name, self.model_options)
        return {"model": self.model_name, **options, "classes": self.num_classes}

    def data_config(self):
        return {"data_source": self._data_source, **self._data, **self._train_options}

    def build_model(self, config):
        from bl_keras import models

        options = dict(self.model_options, classes=self.num_classes, classifier_activation=None)
        if config.sync_bn:
            options["norm"] = {"synchronized": True}
        return models.get(self.model_name, **options)

    def train_dataset(self, input_context, per_replica_batch, skip_examples):
        info = self._build_dataset(split=self.train_split, training=True,
                                   batch_size=per_replica_batch,
                                   seed=self.seed, input_context=input_context,
                                   skip_examples=skip_examples, **self._data,
                                   **self._train_options)
        self.track_skips(info.skipped)
        return info.dataset

    def eval_dataset(self, input_context, per_replica_batch):
        info = self._build_dataset(split="val", training=False, batch_size=per_replica_batch,
                                   seed=self.seed, input_context=input_context, **self._data)
        self.track_skips(info.skipped)
        return info.dataset


def model_options_from_flags():
    _, options = train_flags.registry_model_options(BUILDER_OPTION_FLAGS)
    return {"zero_init_residual": FLAGS.zero_init_residual, **options}


def prepare_data_dir():
    """Check --data_dir (generating the demo set first for --data_source=demo)."""
    if not FLAGS.data_dir:
        raise train_flags.FlagError("data_dir", "required")
    if FLAGS.data_source == "demo":
        from bl_keras.data.demo import make_demo_dataset

        make_demo_dataset(FLAGS.data_dir, train_per_class=FLAGS.demo_train_per_class,
                          val_per_class=FLAGS.demo_val_per_class,
                          image_size=FLAGS.demo_image_size, seed=FLAGS.seed)
    elif FLAGS.data_source != "tfds" and not os.path.isdir(FLAGS.data_dir):
        raise train_flags.FlagError("data_dir", f"no such directory: {FLAGS.data_dir}")


def data_options_from_flags():
    """The data and augmentation arguments of `ImageClassificationTask`, validated."""
    if FLAGS.image_size < 16:  # (28: MNIST-format sets at their own size)
        raise train_flags.FlagError("image_size", f"must be >= 16, got {FLAGS.image_size}")
    for name in ("min_crop_area", "eval_crop_fraction"):
        if not 0 < getattr(FLAGS, name) <= 1:
            raise train_flags.FlagError(name, f"must be in (0, 1], got {getattr(FLAGS, name)}")
    classes = None
    if FLAGS.classes is not None:
        try:
            classes = [int(c) for c in FLAGS.classes]
        except ValueError:
            raise train_flags.FlagError("classes", f"expected class indices, got "
                                                   f"{FLAGS.classes}") from None
        if not classes or len(set(classes)) != len(classes) or min(classes) < 0:
            raise train_flags.FlagError("classes", f"expected distinct class indices >= 0, "
                                                   f"got {FLAGS.classes}")
    rotation = FLAGS.rotation_degrees
    if rotation is None:
        rotation = 10.0 if "seresnext" in (FLAGS.model or "") else 0.0
    return dict(
        data_source=FLAGS.data_source, data_dir=FLAGS.data_dir, image_size=FLAGS.image_size,
        rotation_degrees=rotation, color_jitter=FLAGS.color_jitter,
        min_crop_area=FLAGS.min_crop_area, eval_crop_fraction=FLAGS.eval_crop_fraction,
        manual_dir=FLAGS.manual_dir, tfds_name=FLAGS.tfds_name,
        label_offset=FLAGS.label_offset,
        num_classes=FLAGS.num_classes, shuffle_buffer=FLAGS.shuffle_buffer,
        cache=FLAGS.cache_data, seed=FLAGS.seed, classes=classes, domain=FLAGS.domain)


def task_from_flags(config):
    """The task of the flags, its model options and data checked (the splits of `config`)."""
    options = model_options_from_flags()
    prepare_data_dir()
    return ImageClassificationTask(FLAGS.model, options, splits=config.splits,
                                   **data_options_from_flags())


if __name__ == "__main__":
    sys.exit(train_flags.run_task(task_from_flags))
