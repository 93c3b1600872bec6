"""Flags shared by every trainer (image, speech, MutualNet), and one-line flag errors.

Every entry point defines its own task flags next to these, parses with `run(main)`, and turns
flag values into a `TrainConfig` with `train_config()`.
"""

import sys

from absl import app, flags

from bl_keras.training.distribute import STRATEGIES
from bl_keras.training.trainer import PRECISIONS, TrainConfig
from bl_keras.training.trainer import ConfigError as FlagError

FLAGS = flags.FLAGS


def define_trainer_flags(defaults=None):
    """Define the trainer flags; `defaults` overrides default values per entry point."""
    d = dict(
        batch_size=256, epochs=110, lr=0.1, lr_batch_reference=256, warmup_epochs=0.0,
        weight_decay=1e-4, momentum=0.9, clip_global_norm=0.0, lr_schedule="cosine",
        lr_halving_start_epoch=10, weight_decay_all=False,
    )
    d.update(defaults or {})
    flags.DEFINE_string("model_dir", None, "Run directory: checkpoints, TensorBoard logs, "
                        "metrics.jsonl and the best/final .keras models. Required.")
    flags.DEFINE_enum("mode", "train", ["train", "eval"],
                      "train: train (and evaluate at each epoch end); eval: evaluate "
                      "--eval_from or the latest checkpoint of --model_dir.")
    flags.DEFINE_string("eval_from", None, "Checkpoint prefix, checkpoint directory or .keras "
                        "file to evaluate with --mode=eval (default: latest in --model_dir).")
    flags.DEFINE_enum("strategy", "auto", list(STRATEGIES),
                      "Distribution: auto = mirrored when GPUs are visible, else one_device; "
                      "multi_worker reads TF_CONFIG; tpu uses --tpu.")
    flags.DEFINE_string("tpu", "", "TPU name or address for --strategy=tpu.")
    flags.DEFINE_integer("cpu_devices", 0, "Split the CPU into this many logical devices, e.g. "
                         "to run --strategy=mirrored on a machine without GPUs (0: do not).")
    flags.DEFINE_integer("batch_size", d["batch_size"], "Global batch size (all replicas).")
    flags.DEFINE_integer("eval_batch_size", None, "Global evaluation batch (default: batch_size).")
    flags.DEFINE_integer("epochs", d["epochs"], "Training epochs.")
    flags.DEFINE_integer("steps_per_epoch", None,
                         "Steps per epoch (default: training examples // batch_size).")
    flags.DEFINE_integer("eval_steps", None, "Limit evaluation to this many batches.")
    flags.DEFINE_float("lr", d["lr"], "Peak learning rate per --lr_batch_reference images; "
                       "scaled linearly with the global batch.")
    flags.DEFINE_integer("lr_batch_reference", d["lr_batch_reference"],
                         "Batch size the --lr is given for.")
    flags.DEFINE_enum("lr_schedule", d["lr_schedule"], ["cosine", "halving"],
                      "cosine: cosine decay to 0 over all epochs; halving: halve every epoch "
                      "from --lr_halving_start_epoch.")
    flags.DEFINE_integer("lr_halving_start_epoch", d["lr_halving_start_epoch"],
                         "First epoch (1-based) whose learning rate is halved, for halving.")
    flags.DEFINE_float("warmup_epochs", d["warmup_epochs"], "Linear warmup from 0, in epochs.")
    flags.DEFINE_float("momentum", d["momentum"], "SGD momentum.")
    flags.DEFINE_boolean("nesterov", True, "Nesterov momentum.")
    flags.DEFINE_float("weight_decay", d["weight_decay"],
                       "Coupled L2 weight decay (gradient += wd * w).")
    flags.DEFINE_boolean("weight_decay_all", d["weight_decay_all"],
                         "Decay every trainable parameter (released PyTorch script) instead of "
                         "only convolution and dense kernels (Tensorpack setup).")
    flags.DEFINE_float("label_smoothing", 0.0, "Label smoothing of the cross-entropy.")
    flags.DEFINE_float("clip_global_norm", d["clip_global_norm"],
                       "Clip gradients to this global norm (0: no clipping).")
    flags.DEFINE_enum("precision", "float32", list(PRECISIONS),
                      "Compute precision; mixed_float16 adds dynamic loss scaling.")
    flags.DEFINE_boolean("jit_compile", False, "Compile the training step with XLA.")
    flags.DEFINE_boolean("sync_bn", False, "Synchronise BatchNorm statistics across replicas.")
    flags.DEFINE_integer("seed", 0, "Seed of weights, data order and augmentation.")
    flags.DEFINE_integer("checkpoint_every", 1000, "Save a checkpoint every N steps (and at "
                         "every epoch end).")
    flags.DEFINE_integer("keep_checkpoints", 3, "Checkpoints kept in --model_dir.")
    flags.DEFINE_boolean("progress", True, "Show a progress bar per epoch.")


def builder_options(entry, names):
    """The flags among `names` that were given, checked against the options `entry`'s builder
    takes (a flag the model has no use for is an error naming it)."""
    options = {}
    for name in names:
        value = getattr(FLAGS, name)
        if value is not None:
            if name not in entry.options:
                raise FlagError(name, f"does not apply to {entry.name}")
            options[name] = value
    return options


def train_config():
    """A `TrainConfig` from the trainer flags, validated; `FlagError` names a bad flag."""
    f = FLAGS
    if not f.model_dir:
        raise FlagError("model_dir", "required")
    positive = ["batch_size", "epochs", "checkpoint_every", "keep_checkpoints",
                "lr_batch_reference"]
    for name in positive + ["steps_per_epoch", "eval_batch_size", "eval_steps"]:
        value = getattr(f, name)
        if value is not None and value <= 0:
            raise FlagError(name, f"must be a positive integer, got {value}")
    if f.cpu_devices < 0:
        raise FlagError("cpu_devices", f"must be >= 0, got {f.cpu_devices}")
    for name in ("lr", "weight_decay", "warmup_epochs", "clip_global_norm", "label_smoothing"):
        if getattr(f, name) < 0:
            raise FlagError(name, f"must be >= 0, got {getattr(f, name)}")
    if f.label_smoothing >= 1:
        raise FlagError("label_smoothing", f"must be < 1, got {f.label_smoothing}")
    if f.warmup_epochs >= f.epochs:
        raise FlagError("warmup_epochs", f"must be < --epochs ({f.epochs})")
    return TrainConfig(
        model_dir=f.model_dir, mode=f.mode, eval_from=f.eval_from, strategy=f.strategy,
        tpu=f.tpu, batch_size=f.batch_size, eval_batch_size=f.eval_batch_size or f.batch_size,
        epochs=f.epochs, steps_per_epoch=f.steps_per_epoch, eval_steps=f.eval_steps, lr=f.lr,
        lr_batch_reference=f.lr_batch_reference, lr_schedule=f.lr_schedule,
        lr_halving_start_epoch=f.lr_halving_start_epoch, warmup_epochs=f.warmup_epochs,
        momentum=f.momentum, nesterov=f.nesterov, weight_decay=f.weight_decay,
        weight_decay_all=f.weight_decay_all, label_smoothing=f.label_smoothing,
        clip_global_norm=f.clip_global_norm, precision=f.precision, jit_compile=f.jit_compile,
        sync_bn=f.sync_bn, seed=f.seed, checkpoint_every=f.checkpoint_every,
        keep_checkpoints=f.keep_checkpoints, progress=f.progress,
    )


def _parse_flags_one_line(argv):
    """absl's parser, but a bad flag is one line on stderr and exit status 2."""
    try:
        return FLAGS(argv)
    except flags.Error as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


def run(main):
    """`app.run(main)` where a `FlagError` raised by `main` is one line and exit status 2."""


    def guarded(argv):
        try:
            return main(argv)
        except FlagError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)

    app.run(guarded, flags_parser=_parse_flags_one_line)


def run_task(make_task, after=None):
    """The body of every entry point: parse the flags, then train or evaluate `make_task()`;
    `after(trainer, task)` runs at the end (e.g. MutualNet's query table)."""

    def main(argv):
        del argv
        from bl_keras.training import runner

        return runner.run(make_task, train_config(), cpu_devices=FLAGS.cpu_devices, after=after)

    return run(main)
