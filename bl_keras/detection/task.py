"""RetinaNet training on the shared trainer (`bl_keras.training.Trainer`): the detection task.

The loss runs inside the trainer's custom loop (`loss.per_image_loss`: one loss per image,
averaged over the global batch), so every strategy the trainer supports trains detectors,
multi-worker included. Evaluation is mAP over decoded boxes (non-maximum suppression, then
pycocotools), which no per-batch sum gives: `evaluate_model` runs the detector on the whole
validation set on each worker (inference needs no collective) and returns mAP@[.5:.95] ("map"),
mAP@0.5 ("map50", the VOC figure, `primary_metric`: it picks best.keras) and mAP@0.75.
"""

import dataclasses
import time

import numpy as np
import tensorflow as tf

from bl_keras.detection import data as detection_data
from bl_keras.detection import shapes
from bl_keras.detection.detector import detections_to_numpy, retinanet
from bl_keras.detection.loss import per_image_loss
from bl_keras.detection.metrics import mean_average_precision
from bl_keras.training.config import ConfigError
from bl_keras.training.task import ClassificationTask


@dataclasses.dataclass(frozen=True)
class DetectorOptions:
    """The RetinaNet around the backbone (KerasHub's defaults: levels 3-7, anchors 4x the
    stride, 4 head convolutions, no normalisation in the heads)."""
    min_level: int = 3
    max_level: int = 7
    anchor_size: float = 4.0
    head_convs: int = 4
    max_detections: int = 100
    head_group_norm: bool = False


@dataclasses.dataclass(frozen=True)
class DetectionSource:
    """Where the images come from: `kind` "shapes" (generated: `shapes_train` / `shapes_val`
    scenes of `image_shape`, square) or "tfds" (`train_sets` / `eval_set`: "name:split" of
    tfds detection sets under `data_dir`, e.g. voc/2007:train+validation)."""
    kind: str = "shapes"
    data_dir: str = None
    train_sets: tuple = ("voc/2007:train+validation", "voc/2012:train+validation")
    eval_set: str = "voc/2007:test"
    shapes_train: int = 2000
    shapes_val: int = 200
    max_boxes: int = 100
    shuffle_buffer: int = 1000


class DetectionTask(ClassificationTask):
    """A RetinaNet on registered image model `model` (with `model_options`), trained on
    `source` at `image_shape` (height, width); `backbone_weights`: a `.keras` classifier of
    that architecture whose weights the backbone starts from."""

    name = "detection"
    primary_metric = "map50"

    def __init__(self, model, model_options, source, image_shape, detector=DetectorOptions(),
                 backbone_weights=None, seed=0, splits=("train", "val")):
        super().__init__()
        self.model_name = model
        self.model_options = dict(model_options)
        self.source = source
        self.image_shape = tuple(int(x) for x in image_shape)
        self.detector_options = detector
        self.backbone_weights = backbone_weights
        self.seed = seed
        self._predict = None  # (model, its traced decode step): traced once per run
        self.has_eval_data = "val" in splits
        if source.kind == "shapes":
            if self.image_shape[0] != self.image_shape[1]:
                raise ConfigError("image_size", "generated shapes are square")
            self.num_classes, self.class_names = len(shapes.CLASSES), list(shapes.CLASSES)
            if "train" in splits:
                self.num_train_examples = source.shapes_train
        elif source.kind == "tfds":
            probes = {}
            if "train" in splits:
                probes["train"] = self._tfds("train_sets", training=False, batch_size=1)
                self.num_train_examples = probes["train"].num_examples
            if "val" in splits:
                probes["val"] = self._tfds("eval_set", training=False, batch_size=1)
            if len({tuple(p.class_names) for p in probes.values()}) != 1:
                raise ConfigError("eval_set", "the training and evaluation sets name different "
                                              "classes")
            probe = next(iter(probes.values()))
            self.num_classes, self.class_names = probe.num_classes, probe.class_names
        else:
            raise ConfigError("data_source", f"unknown detection source {source.kind!r}")

    def _tfds(self, flag, **kwargs):
        sets = self.source.train_sets if flag == "train_sets" else self.source.eval_set
        try:
            return detection_data.tfds_detection(
                sets, self.source.data_dir, image_shape=self.image_shape,
                max_boxes=self.source.max_boxes, shuffle_buffer=self.source.shuffle_buffer,
                **{"seed": self.seed, **kwargs})
        except (FileNotFoundError, ValueError) as err:
            raise ConfigError(flag, str(err).splitlines()[0]) from None

    # ---- the run's record -------------------------------------------------------------------

    def model_config(self):
        return {"model": self.model_name, **self.model_options, "classes": self.num_classes,
                **dataclasses.asdict(self.detector_options)}

    def data_config(self):
        source = dataclasses.asdict(self.source)
        source["train_sets"] = list(source["train_sets"])
        return {"image_shape": list(self.image_shape), "backbone_weights": self.backbone_weights,
                **source}

    # ---- model, data, loss ------------------------------------------------------------------

    def build_model(self, config):
        from bl_keras.saving import load_model

        if config.sync_bn:
            raise ConfigError("sync_bn", "detection fine-tunes BatchNorm per replica (no "
                                         "synchronised mode)")
        classifier = load_model(self.backbone_weights) if self.backbone_weights else None
        options = dataclasses.asdict(self.detector_options)
        return retinanet(self.model_name, self.model_options, num_classes=self.num_classes,
                         image_shape=(*self.image_shape, 3), classifier=classifier, **options)

    def _dataset(self, training, batch_size, input_context=None, skip_examples=0):
        source = self.source
        common = dict(batch_size=batch_size, training=training, seed=self.seed,
                      input_context=input_context, skip_examples=skip_examples)
        if source.kind == "shapes":
            count, split = ((source.shapes_train, "train") if training
                            else (source.shapes_val, "val"))
            return shapes.shapes_dataset(count, split, image_size=self.image_shape[0],
                                         **common).dataset
        return self._tfds("train_sets" if training else "eval_set", **common).dataset

    def train_dataset(self, input_context, per_replica_batch, skip_examples):
        return self._dataset(True, per_replica_batch, input_context, skip_examples)

    def eval_dataset(self, input_context, per_replica_batch):
        return self._dataset(False, per_replica_batch)

    def compute_loss(self, model, batch, training, label_smoothing=0.0):
        """(per-image loss, outputs, targets): the trainer sums the losses over the global
        batch; `metric_sums` reads the rest."""
        images, targets = batch
        outputs = model(images, training=training)
        return per_image_loss(model, images, targets, outputs), outputs, targets

    @staticmethod
    def metric_sums(per_example_loss, outputs, targets):
        objects = tf.reduce_sum(tf.cast(targets["labels"] >= 0, tf.float32))
        return {"loss": tf.reduce_sum(per_example_loss), "objects": objects,
                "count": tf.cast(tf.shape(per_example_loss)[0], tf.float32)}

    # ---- evaluation -------------------------------------------------------------------------

    def evaluate_model(self, model, config):
        """mAP of `model` on the validation set (at most `config.eval_steps` batches), with
        the number of images and images/s."""
        truth, predicted = [], []
        if self._predict is None or self._predict[0] is not model:
            self._predict = (model, tf.function(lambda images: model.decode_predictions(
                model(images, training=False), images)))
        predict = self._predict[1]
        start = time.time()
        for step, (images, targets) in enumerate(self._dataset(False, config.eval_batch_size)):
            if config.eval_steps and step >= config.eval_steps:
                break
            decoded = {k: v.numpy() for k, v in predict(images).items()}
            predicted.extend(detections_to_numpy(decoded))
            truth.extend(ground_truth(targets))
        elapsed = max(time.time() - start, 1e-9)
        result = mean_average_precision(truth, predicted, self.num_classes,
                                         max_detections=self.detector_options.max_detections)
        detections = sum(len(p["scores"]) for p in predicted)
        return {**result, "detections_per_image": detections / max(len(truth), 1),
                self.example_unit: len(truth),
                f"{self.example_unit}_per_sec": len(truth) / elapsed}


def ground_truth(targets):
    """One dict per image of a target batch: boxes, classes and ignore (the objects labelled
    `IGNORED`), padding dropped."""
    boxes = np.asarray(targets["boxes"])
    labels = np.asarray(targets["labels"])
    classes = np.asarray(targets["classes"])
    images = []
    for image_boxes, image_labels, image_classes in zip(boxes, labels, classes):
        real = image_classes >= 0
        images.append({"boxes": image_boxes[real], "classes": image_classes[real],
                       "ignore": image_labels[real] == detection_data.IGNORED})
    return images
