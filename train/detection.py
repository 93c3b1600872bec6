"""RetinaNet (KerasHub) on a bL or baseline backbone of the zoo: train, evaluate mAP.

    python -m train.detection --flagfile=configs/detection/demo.flags          # 2 CPU cores
    python -m train.detection --flagfile=configs/detection/bl_resnet101_voc.flags \\
        --data_dir=/data/tfds --backbone_weights=runs/bl_resnet101/model.keras

The trainer (strategies, checkpoints and resume, metrics.jsonl, TensorBoard) is the one every
entry point shares; the loss is RetinaNet's per image (`bl_keras.detection.loss`), and each
epoch ends with mAP on the validation set (`val_map`, `val_map50`, `val_map75`; best.keras
follows mAP@0.5). --data_source=shapes generates its scenes; tfds reads VOC or COCO prepared
under --data_dir. `--picture` (demo) writes validation images with their predicted boxes.
Needs the detection extra: pip install "bl_keras[detection]".
"""

import json
import os
import sys

from absl import flags

from train import flags as train_flags

FLAGS = flags.FLAGS

BUILDER_OPTION_FLAGS = ("alpha", "beta", "stage_depths", "stage_filters", "stem_filters")

train_flags.define_trainer_flags(defaults=dict(
    epochs=12, batch_size=16, lr=0.01, lr_batch_reference=16, lr_schedule="step",
    lr_step_epochs="8,11", warmup_epochs=0.5, clip_global_norm=10.0))
flags.DEFINE_string("model", None, "Backbone: a zoo image model (bl_keras.models.list_models()), "
                    "e.g. bl_resnet101, resnet101. Required.")
train_flags.define_builder_flags(BUILDER_OPTION_FLAGS)
flags.DEFINE_string("backbone_weights", None, "A .keras classifier of the backbone's "
                    "architecture (train.imagenet's model.keras, or a converted released "
                    "checkpoint) to start from; default: random initialisation.")
flags.DEFINE_enum("data_source", "shapes", ["shapes", "tfds"],
                  "shapes: generated scenes of discs, squares, triangles and crosses; tfds: "
                  "--train_sets and --eval_set prepared under --data_dir.")
flags.DEFINE_string("data_dir", None, "tfds: the tfds data directory. Required for tfds.")
flags.DEFINE_list("train_sets", ["voc/2007:train+validation", "voc/2012:train+validation"],
                  "tfds: training sets as name:split, read as one (VOC07+12 by default; COCO: "
                  "coco/2017:train).")
flags.DEFINE_string("eval_set", "voc/2007:test", "tfds: the evaluation set as name:split "
                    "(COCO: coco/2017:validation).")
flags.DEFINE_list("image_size", ["600", "1024"], "Input height,width: images are resized to "
                  "fit, keeping their aspect ratio, and padded (shapes: one side).")
flags.DEFINE_integer("max_boxes", 100, "Objects kept per image.")
flags.DEFINE_integer("shuffle_buffer", 1000, "Shuffle buffer (images).")
flags.DEFINE_integer("shapes_train", 2000, "shapes: training scenes.")
flags.DEFINE_integer("shapes_val", 200, "shapes: validation scenes.")
flags.DEFINE_integer("min_level", 3, "Lowest pyramid level of the detector (P3: stride 8).")
flags.DEFINE_integer("max_level", 7, "Highest pyramid level (P6, P7 are made from P5).")
flags.DEFINE_float("anchor_size", 4.0, "Anchor side in strides of its level (4: 32 px on P3).")
flags.DEFINE_integer("head_convs", 4, "3x3 convolutions of each head before its output.")
flags.DEFINE_integer("max_detections", 100, "Detections kept per image after NMS.")
flags.DEFINE_boolean("head_group_norm", False, "GroupNorm after the heads' convolutions "
                     "(helps training from scratch).")
flags.DEFINE_integer("picture", 0, "After training, draw this many validation images with "
                     "their predicted boxes into <model_dir>/detections.png.")


def model_options_from_flags():
    name, options = train_flags.registry_model_options(BUILDER_OPTION_FLAGS)
    return train_flags.with_builder_defaults(name, options)


def task_from_flags(config):
    """The detection task of the flags, its data checked (the splits of `config`)."""
    try:
        from bl_keras.detection.task import DetectionSource, DetectionTask, DetectorOptions
    except ImportError as err:  # KerasHub missing: say how to install it
        raise SystemExit(f"error: {err}") from None

    options = model_options_from_flags()
    height, width = train_flags.positive_ints("image_size", FLAGS.image_size, 2)
    if not FLAGS.min_level <= FLAGS.max_level or not 2 <= FLAGS.min_level <= 5:
        raise train_flags.FlagError("min_level", "need 2 <= --min_level <= 5 and <= --max_level")
    for name in ("anchor_size", "head_convs", "max_detections", "max_boxes", "shapes_train",
                 "shapes_val"):
        if getattr(FLAGS, name) <= 0:
            raise train_flags.FlagError(name, f"must be positive, got {getattr(FLAGS, name)}")
    if FLAGS.data_source == "tfds":
        from bl_keras.detection.data import parse_set

        if not FLAGS.data_dir:
            raise train_flags.FlagError("data_dir", "required for --data_source=tfds")
        for flag, sets in (("train_sets", FLAGS.train_sets), ("eval_set", [FLAGS.eval_set])):
            for text in sets:
                try:
                    parse_set(text)
                except ValueError as err:
                    raise train_flags.FlagError(flag, str(err)) from None
    if FLAGS.backbone_weights and not os.path.isfile(FLAGS.backbone_weights):
        raise train_flags.FlagError("backbone_weights", f"no such file: {FLAGS.backbone_weights}")
    source = DetectionSource(
        kind=FLAGS.data_source, data_dir=FLAGS.data_dir, train_sets=tuple(FLAGS.train_sets),
        eval_set=FLAGS.eval_set, shapes_train=FLAGS.shapes_train, shapes_val=FLAGS.shapes_val,
        max_boxes=FLAGS.max_boxes, shuffle_buffer=FLAGS.shuffle_buffer)
    detector = DetectorOptions(min_level=FLAGS.min_level, max_level=FLAGS.max_level,
                               anchor_size=FLAGS.anchor_size, head_convs=FLAGS.head_convs,
                               max_detections=FLAGS.max_detections,
                               head_group_norm=FLAGS.head_group_norm)
    return DetectionTask(FLAGS.model, options, source, (height, width), detector=detector,
                         backbone_weights=FLAGS.backbone_weights, seed=FLAGS.seed,
                         splits=config.splits)


def after_training(trainer, task):
    """After training: the trivial detector's mAP beside the model's, and the picture (chief
    only)."""
    if not trainer.is_chief or not task.has_eval_data or trainer.config.mode != "train":
        return
    from bl_keras.detection import report

    # The last epoch evaluated the final weights: its mAP is the model's.
    with open(os.path.join(trainer.config.model_dir, "metrics.jsonl")) as log:
        last = json.loads(log.read().splitlines()[-1])
    measured = {k: last[f"val_{k}"] for k in ("map", "map50", "map75")}
    summary = report.summary(trainer.model, task, trainer.config, model_result=measured)
    print(summary.text(), flush=True)
    if FLAGS.picture:
        path = os.path.join(trainer.config.model_dir, "detections.png")
        report.draw_detections(trainer.model, task, FLAGS.picture, path)
        print(f"Detections drawn in {path}", flush=True)


def main():
    return train_flags.run_task(task_from_flags, after=after_training)


if __name__ == "__main__":
    sys.exit(main())
