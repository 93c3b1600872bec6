"""MutualNet training of a slimmable network (width-resolution mutual learning, paper 003).

    python -m train.mutualnet --flagfile=configs/mutualnet/mobilenet_v2.flags \\
        --data_dir=/data/imagenet --model_dir=runs/mutualnet_mobilenet_v2
    python -m train.mutualnet --flagfile=configs/mutualnet/demo.flags    # demo data, 2 CPU cores

The trainer, data pipelines, strategies, checkpoints and flags are `train.imagenet`'s; the
task's loss is the sandwich rule with inplace distillation (`bl_keras.mutualnet.sandwich`).
`--nomutual` trains the full network alone (the baseline the paper compares with).
`--query` finishes with the query table (`bl_keras.mutualnet.query`) in <model_dir>/query.
"""

import dataclasses
import inspect
import os
import sys

from absl import flags

from train import flags as train_flags
from train import imagenet

FLAGS = flags.FLAGS

flags.DEFINE_list("width_range", ["0.25", "1.0"], "Smallest and largest width multiplier.")
flags.DEFINE_integer("num_random_widths", 2, "Random widths per step besides the smallest and "
                     "the largest (sandwich rule).")
flags.DEFINE_list("resolutions", ["224", "192", "160", "128"],
                  "Input resolutions of the sub-networks; the largest is the full network's "
                  "and must equal --image_size.")
flags.DEFINE_boolean("mutual", True, "Train the sub-networks (MutualNet); false trains the full "
                     "network alone on the labels.")
flags.DEFINE_boolean("distill", True, "Sub-networks learn from the full network's predictions "
                     "(inplace distillation); false: from the labels.")
flags.DEFINE_float("base_width", 1.0, "Width multiplier of the network as built (small models).")
flags.DEFINE_boolean("query", False, "After training, calibrate and evaluate every (width, "
                     "resolution) and write the query table to <model_dir>/query.")
flags.DEFINE_float("query_width_step", 0.05, "Width step of the query table.")
flags.DEFINE_integer("calibration_images", 2000, "Training images for the BatchNorm statistics "
                     "of each query-table configuration.")


class MutualNetTask(imagenet.ImageClassificationTask):
    """Image classification whose training loss is MutualNet's sandwich rule."""

    name = "mutualnet"

    def __init__(self, model, model_options, rule, mutual=True, **data):
        super().__init__(model, model_options, **data)
        self.rule = rule
        self.mutual = mutual
        self._step = None

    def build_model(self, config):
        from bl_keras import slimmable
        from bl_keras.training import ConfigError

        if config.sync_bn:
            raise ConfigError("sync_bn", "slimmable BatchNorm normalises each replica's batch "
                                         "(no synchronised mode)")
        return slimmable.get(self.model_name, classes=self.num_classes,
                             classifier_activation=None, **self.model_options)

    def attach(self, step):
        self._step = step

    def model_config(self):
        from bl_keras.slimmable.network import ARCHITECTURES

        parameters = inspect.signature(ARCHITECTURES[self.model_name]).parameters
        defaults = {name: parameters[name].default for name in slimmable_options(self.model_name)
                    if parameters[name].default is not inspect.Parameter.empty}
        return {"model": self.model_name, **defaults, **self.model_options,
                "classes": self.num_classes}

    def data_config(self):
        return dict(super().data_config(), mutual=self.mutual,
                    sandwich_rule=dataclasses.asdict(self.rule))

    def calibration_options(self):
        """How the query table reads this task's training images: its source and the training
        augmentation (calibration statistics are those of augmented images)."""
        from bl_keras.slimmable.calibration_images import training_augmentation

        options = self._train_options
        return dict(source_name=self._data["source_name"], augmentation=training_augmentation(
            options["min_crop_area"], options["color_jitter"], options["rotation_degrees"]))

    def compute_loss(self, model, batch, training, label_smoothing=0.0):
        from bl_keras.mutualnet.sandwich import subnetwork_losses

        loss, logits, labels = super().compute_loss(model, batch, training, label_smoothing)
        if training and self.mutual:
            loss += subnetwork_losses(model, batch[0], labels, logits, self.rule, self._step)
        return loss, logits, labels


def _floats(flag, values, count=None):
    try:
        numbers = [float(v) for v in values]
    except ValueError:
        raise train_flags.FlagError(flag, f"expected numbers, got {values}") from None
    if count and len(numbers) != count:
        raise train_flags.FlagError(flag, f"expected {count} numbers, got {values}")
    return numbers


def rule_from_flags():
    from bl_keras.mutualnet.sandwich import SandwichRule

    low, high = _floats("width_range", FLAGS.width_range, 2)
    if not 0 < low < high <= 1:
        raise train_flags.FlagError("width_range", f"need 0 < min < max <= 1, got {low}, {high}")
    resolutions = _floats("resolutions", FLAGS.resolutions)
    if not resolutions or any(r != int(r) or r < 16 for r in resolutions):
        raise train_flags.FlagError("resolutions", f"expected integers >= 16, got "
                                    f"{FLAGS.resolutions}")
    resolutions = tuple(sorted({int(r) for r in resolutions}, reverse=True))
    if resolutions[0] != FLAGS.image_size:
        raise train_flags.FlagError("resolutions", f"the largest ({resolutions[0]}) is the full "
                                    f"network's and must equal --image_size "
                                    f"({FLAGS.image_size})")
    if FLAGS.num_random_widths < 0:
        raise train_flags.FlagError("num_random_widths", "must be >= 0")
    return SandwichRule(low, high, FLAGS.num_random_widths, resolutions, FLAGS.distill,
                        FLAGS.seed)


def slimmable_options(model):
    """The builder options slimmable architecture `model` takes: the keywords of its registered
    function beyond (scale, norm, dtype), which the network supplies."""
    from bl_keras.slimmable.network import ARCHITECTURES

    parameters = inspect.signature(ARCHITECTURES[model]).parameters
    return tuple(name for name in parameters if name not in ("scale", "norm", "dtype"))


def model_options_from_flags():
    from bl_keras import slimmable

    if not FLAGS.model:
        raise train_flags.FlagError("model", "required")
    if FLAGS.model not in slimmable.list_models():
        raise train_flags.FlagError("model", f"unknown slimmable model {FLAGS.model!r}; valid: "
                                    f"{', '.join(slimmable.list_models())}")
    if FLAGS["zero_init_residual"].present:
        raise train_flags.FlagError("zero_init_residual", "does not apply to slimmable models "
                                    "(their ResNets always zero-initialise it)")
    if not 0 < FLAGS.base_width <= 1:
        raise train_flags.FlagError("base_width", f"must be in (0, 1], got {FLAGS.base_width}")
    options = {"base_width": FLAGS.base_width}
    accepted = slimmable_options(FLAGS.model)
    for name in imagenet.BUILDER_OPTION_FLAGS:
        value = getattr(FLAGS, name)
        if value is None:
            continue
        if name not in accepted:
            raise train_flags.FlagError(name, f"does not apply to {FLAGS.model}")
        options[name] = (train_flags.positive_ints(name, value, 4) if isinstance(value, list)
                         else value)
    return options


def task_from_flags(config):
    """The task of the flags, its model options and data checked (the splits of `config`)."""
    if config.sync_bn:  # refused here too, before the task reads its data
        raise train_flags.FlagError("sync_bn", "slimmable BatchNorm normalises each replica's "
                                               "batch (no synchronised mode)")
    if FLAGS.query and FLAGS.data_source == "tfds" and FLAGS.tfds_name != "imagenet2012":
        # The query table's calibration reads a source by its name alone.
        raise train_flags.FlagError("query", f"the query table reads tfds imagenet2012 only, "
                                             f"not --tfds_name={FLAGS.tfds_name}")
    rule = rule_from_flags()
    options = model_options_from_flags()
    imagenet.prepare_data_dir()
    return MutualNetTask(FLAGS.model, options, rule, mutual=FLAGS.mutual, splits=config.splits,
                         **imagenet.data_options_from_flags())


def write_query_table(trainer, task):
    """The query table of the trained model (chief only), into <model_dir>/query."""
    from bl_keras import mutualnet as query  # its query_table, widths_grid, write_table

    low, high = task.rule.min_width, task.rule.max_width
    rows = query.query_table(
        trainer.model, FLAGS.data_dir, query.widths_grid(low, high, FLAGS.query_width_step),
        task.rule.resolutions, calibration_images=FLAGS.calibration_images,
        batch_size=FLAGS.eval_batch_size or FLAGS.batch_size,
        eval_crop_fraction=FLAGS.eval_crop_fraction, **task.calibration_options())
    out = os.path.join(trainer.config.model_dir, "query")
    paths = query.write_table(rows, out, title=f"MutualNet {task.model_name}")
    print(f"Query table: {', '.join(paths)}", flush=True)
    return rows


def main():
    def after_training(trainer, task):
        if FLAGS.query and trainer.is_chief and trainer.config.mode == "train":
            write_query_table(trainer, task)

    return train_flags.run_task(task_from_flags, after=after_training)


if __name__ == "__main__":
    sys.exit(main())
