"""The training options, each declared once: its type, default, help text, choices and range.

`TrainConfig` is what the `Trainer` reads; the command-line entry points derive their flags
(`train.flags.define_trainer_flags`) and the flags -> `TrainConfig` copy from these declarations,
so an option is added, documented or given a new default in one place.
"""

import dataclasses

from bl_keras.training.distribute import STRATEGIES

PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")


class ConfigError(ValueError):
    """A configuration that cannot run; `flag` names the flag to change."""

    def __init__(self, flag, message):
        super().__init__(f"--{flag}: {message}")
        self.flag = flag


def option(default, help, choices=None, check=None):
    """A `TrainConfig` field: `help` and `choices` document its flag; `check` is "positive"
    (an integer > 0 when given) or "non_negative" (a number >= 0)."""
    return dataclasses.field(default=default, metadata=dict(
        help=help, choices=tuple(choices) if choices else None, check=check))


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    model_dir: str = option(None, "Run directory: checkpoints, TensorBoard logs, metrics.jsonl "
                                  "and the best/final .keras models. Required.")
    mode: str = option("train", "train: train (and evaluate at each epoch end); eval: evaluate "
                                "--eval_from or the latest checkpoint of --model_dir.",
                       choices=("train", "eval"))
    eval: bool = option(True, "Evaluate on the validation split at each epoch end and keep the "
                              "best model as best.keras; --noeval trains without a validation "
                              "split (no val_* metrics, no best.keras).")
    eval_from: str = option(None, "Checkpoint prefix, checkpoint directory or .keras file to "
                                  "evaluate with --mode=eval (default: latest in --model_dir).")
    strategy: str = option("auto", "Distribution: auto = mirrored when GPUs are visible, else "
                                   "one_device; multi_worker reads TF_CONFIG; tpu uses --tpu.",
                           choices=STRATEGIES)
    tpu: str = option("", "TPU name or address for --strategy=tpu.")
    cpu_devices: int = option(0, "Split the CPU into this many logical devices, e.g. to run "
                                 "--strategy=mirrored on a machine without GPUs (0: do not).",
                              check="non_negative")
    batch_size: int = option(256, "Global batch size (all replicas).", check="positive")
    eval_batch_size: int = option(None, "Global evaluation batch (default: batch_size).",
                                  check="positive")
    epochs: int = option(110, "Training epochs.", check="positive")
    steps_per_epoch: int = option(None, "Steps per epoch (default: training examples // "
                                        "batch_size).", check="positive")
    eval_steps: int = option(None, "Limit evaluation to this many batches.", check="positive")
    lr: float = option(0.1, "Peak learning rate per --lr_batch_reference images; scaled "
                            "linearly with the global batch.", check="non_negative")
    lr_batch_reference: int = option(256, "Batch size the --lr is given for.", check="positive")
    lr_schedule: str = option("cosine", "cosine: cosine decay to 0 over all epochs; halving: "
                                        "halve every epoch from --lr_halving_start_epoch; "
                                        "step: multiply by --lr_step_factor after each of "
                                        "--lr_step_epochs (none: constant).",
                              choices=("cosine", "halving", "step"))
    lr_halving_start_epoch: int = option(10, "First epoch (1-based) whose learning rate is "
                                             "halved, for halving.")
    lr_step_epochs: str = option("", "step: comma-separated epoch counts after which the "
                                     "learning rate is multiplied by --lr_step_factor, e.g. "
                                     "40,60,80.")
    lr_step_factor: float = option(0.1, "step: the factor applied at each of --lr_step_epochs.",
                                   check="non_negative")
    optimizer: str = option("sgd", "sgd: SGD with --momentum (and --nesterov); adam: Adam "
                                   "(epsilon 1e-8, as PyTorch's; BlockDrop's recipe).",
                            choices=("sgd", "adam"))
    warmup_epochs: float = option(0.0, "Linear warmup from 0, in epochs.", check="non_negative")
    momentum: float = option(0.9, "SGD momentum.")
    nesterov: bool = option(True, "Nesterov momentum.")
    weight_decay: float = option(1e-4, "Coupled L2 weight decay (gradient += wd * w).",
                                 check="non_negative")
    weight_decay_all: bool = option(False, "Decay every trainable parameter (released PyTorch "
                                           "script) instead of only convolution and dense "
                                           "kernels (Tensorpack setup).")
    label_smoothing: float = option(0.0, "Label smoothing of the cross-entropy.",
                                    check="non_negative")
    clip_global_norm: float = option(0.0, "Clip gradients to this global norm (0: no clipping).",
                                     check="non_negative")
    precision: str = option("float32", "Compute precision; mixed_float16 adds dynamic loss "
                                       "scaling.", choices=PRECISIONS)
    jit_compile: bool = option(False, "Compile the training step with XLA.")
    sync_bn: bool = option(False, "Synchronise BatchNorm statistics across replicas.")
    seed: int = option(0, "Seed of weights, data order and augmentation.")
    checkpoint_every: int = option(1000, "Save a checkpoint every N steps (and at every epoch "
                                         "end).", check="positive")
    keep_checkpoints: int = option(3, "Checkpoints kept in --model_dir.", check="positive")
    progress: bool = option(True, "Show a progress bar per epoch.")

    def __post_init__(self):
        """Check every option; a `ConfigError` names the first bad one."""
        if not self.model_dir:
            raise ConfigError("model_dir", "required")
        if self.eval_batch_size is None:
            object.__setattr__(self, "eval_batch_size", self.batch_size)
        for field in dataclasses.fields(self):
            value, meta = getattr(self, field.name), field.metadata
            if meta["choices"] and value not in meta["choices"]:
                raise ConfigError(field.name, f"must be one of {', '.join(meta['choices'])}, "
                                              f"got {value!r}")
            if meta["check"] == "positive" and value is not None and value <= 0:
                raise ConfigError(field.name, f"must be a positive integer, got {value}")
            if meta["check"] == "non_negative" and value < 0:
                raise ConfigError(field.name, f"must be >= 0, got {value}")
        if self.label_smoothing >= 1:
            raise ConfigError("label_smoothing", f"must be < 1, got {self.label_smoothing}")
        if self.warmup_epochs >= self.epochs:
            raise ConfigError("warmup_epochs", f"must be < --epochs ({self.epochs})")
        try:
            steps = self.step_epochs
        except ValueError:
            raise ConfigError("lr_step_epochs", f"expected comma-separated positive integers, "
                                                f"got {self.lr_step_epochs!r}") from None
        if any(e < 1 for e in steps) or list(steps) != sorted(set(steps)):
            raise ConfigError("lr_step_epochs", f"expected increasing positive integers, got "
                                                f"{self.lr_step_epochs!r}")
        if self.mode == "eval" and not self.eval:
            raise ConfigError("eval", "--mode=eval evaluates: it cannot be combined with --noeval")

    @property
    def step_epochs(self):
        """--lr_step_epochs as a tuple of integers."""
        return tuple(int(e) for e in self.lr_step_epochs.split(",") if e.strip())

    @property
    def splits(self):
        """The data splits this run reads: evaluation needs only the validation split,
        --noeval only the training split."""
        if self.mode == "eval":
            return ("val",)
        return ("train", "val") if self.eval else ("train",)
