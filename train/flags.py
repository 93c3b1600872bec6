"""Flags shared by every trainer (image, speech, MutualNet), and one-line flag errors.

The trainer flags are derived from the `TrainConfig` declaration (`bl_keras.training.config`):
one flag per option, same name, help text, choices and default. Every entry point defines its
own task flags next to these, parses with `run(main)`, and turns flag values into a
`TrainConfig` with `train_config()`. `--help` and `--helpfull` list the entry point's flags
(`--helpfull` adds absl's logging flags) and exit 0; TensorFlow's INFO log lines are hidden unless
--verbosity is given.
"""

import dataclasses
import sys

from absl import app, flags
from absl import logging as absl_logging

from bl_keras.training.config import ConfigError as FlagError
from bl_keras.training.config import TrainConfig

FLAGS = flags.FLAGS
# The absl flag kind of each `TrainConfig` option type (options with choices are enums).
_DEFINE_BY_TYPE = {str: flags.DEFINE_string, int: flags.DEFINE_integer,
                   float: flags.DEFINE_float, bool: flags.DEFINE_boolean}


def define_trainer_flags(defaults=None):
    """Define one flag per `TrainConfig` option, with its help text, choices and default;
    `defaults` overrides default values per entry point (e.g. the speech recipe's)."""
    fields = {field.name: field for field in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(defaults or {}) - set(fields))
    if unknown:
        raise ValueError(f"no trainer option {', '.join(unknown)}; valid: {', '.join(fields)}")
    for name, field in fields.items():
        default = (defaults or {}).get(name, field.default)
        help_text, choices = field.metadata["help"], field.metadata["choices"]
        if choices:
            flags.DEFINE_enum(name, default, list(choices), help_text)
        else:
            _DEFINE_BY_TYPE[field.type](name, default, help_text)


# The registry models' builder options as flags (None: the builder's default).
_BUILDER_FLAGS = {
    "alpha": (flags.DEFINE_integer, "bL width ratio (bL models; default 2)."),
    "beta": (flags.DEFINE_integer, "bL depth ratio (bL models; default 4)."),
    "upsample": (lambda name, default, help: flags.DEFINE_enum(
        name, default, ["nearest", "bilinear"], help),
        "bL upsampling: nearest (released code, default) or bilinear (paper text)."),
    "merge": (lambda name, default, help: flags.DEFINE_enum(
        name, default, ["add", "concat"], help),
        "bL-ResNet branch merge: add (paper, default) or concat (Table 7 ablation)."),
    "branches": (flags.DEFINE_integer,
                 "bL-ResNet branches: 2 (default) or 3 (Table 7 ablation)."),
    "num_merges": (flags.DEFINE_integer,
                   "bL-ResNet merge points (Table 8 ablation; default 4)."),
    "stage_depths": (flags.DEFINE_list, "Blocks per stage, 4 integers (small models)."),
    "stage_filters": (flags.DEFINE_list, "Output channels per stage, 4 integers."),
    "stem_filters": (flags.DEFINE_integer, "Stem channels (default 64)."),
}


def define_builder_flags(names):
    """Define the builder-option flags `names` (of `_BUILDER_FLAGS`), all defaulting to None."""
    for name in names:
        define, help_text = _BUILDER_FLAGS[name]
        define(name, None, help_text)


def builder_options(model, names):
    """The flags among `names` that were given, checked against the options the registry entry
    of `model` declares (a flag the model has no use for is an error naming it)."""
    from bl_keras import models

    options = {name: getattr(FLAGS, name) for name in names if getattr(FLAGS, name) is not None}
    try:
        models.check_options(model, options)
    except models.OptionError as err:
        raise FlagError(err.option, f"does not apply to {model}") from None
    return options


def positive_ints(flag, values, count=None):
    """List flag `values` as positive integers (`count` of them when given); a `FlagError`
    names the flag otherwise."""
    expected = f"{count} positive integers" if count else "positive integers"
    try:
        numbers = [int(v) for v in values]
    except ValueError:
        raise FlagError(flag, f"expected {expected}, got {values}") from None
    if (count and len(numbers) != count) or not numbers or min(numbers) < 1:
        raise FlagError(flag, f"expected {expected}, got {values}")
    return numbers


def registry_model_options(option_flags):
    """(registry name of --model, its builder options from the given `option_flags`): the
    model must exist, each given flag must apply to it, and the stage lists are 4 positive
    integers."""
    from bl_keras import models

    if not FLAGS.model:
        raise FlagError("model", "required")
    try:
        entry = models.get_entry(FLAGS.model)
    except ValueError as err:
        raise FlagError("model", str(err)) from None
    options = builder_options(entry.name, option_flags)
    for name in ("stage_depths", "stage_filters"):
        if name in options:
            options[name] = positive_ints(name, options[name], 4)
    return entry.name, options


def with_builder_defaults(model, options):
    """`options` plus the defaults the builder of `model` declares for its other options, so
    the run records of --alpha=2 and of alpha's default 2 are the same model. (Options a builder
    takes through **kwargs have no visible default: they are recorded only when given.)"""
    import inspect

    from bl_keras import models

    entry = models.get_entry(model)
    parameters = inspect.signature(entry.builder).parameters
    defaults = {name: parameters[name].default for name in entry.options
                if name in parameters and parameters[name].default is not inspect.Parameter.empty}
    return dict(defaults, **options)


def train_config():
    """A `TrainConfig` from the trainer flags, validated; `FlagError` names a bad flag."""
    return TrainConfig(**{field.name: getattr(FLAGS, field.name)
                          for field in dataclasses.fields(TrainConfig)})


# absl's help flags exit with status 1 and --helpfull lists every flag TensorFlow defines too.
HELP_ARGS = ("--help", "-help", "--helpshort", "-helpshort", "-?", "--helpfull", "-helpfull")


def entry_point_help(full=False):
    """The usage of the running entry point and its flags (those of the `train` modules);
    `full` adds absl's own (logging verbosity, flagfile), not the TensorFlow-internal ones."""
    main_module = sys.modules["__main__"]
    ours = [name for name in FLAGS.flags_by_module_dict()
            if name.startswith("train.") or name == sys.argv[0]
            or (full and name in ("absl.logging", "absl.flags"))]
    parts = [(main_module.__doc__ or "").strip()]
    for name in sorted(ours, key=_flag_module_order):
        text = FLAGS.module_help(name)
        if name == sys.argv[0]:  # absl names the main module by its file: name it as run
            text = text.replace(name, getattr(main_module.__spec__, "name", name), 1)
        parts.append(text)
    return "\n\n".join(part for part in parts if part) + "\n"


def _flag_module_order(name):
    # The entry point's own flags first, then the shared trainer flags, then absl's.
    return (name.startswith("absl."), name == "train.flags", name)


def _parse_flags_one_line(argv):
    """absl's parser, but a bad flag is one line on stderr and exit status 2, and --help /
    --helpfull print the entry point's flags and exit 0."""
    help_args = [arg for arg in argv[1:] if arg.split("=")[0] in HELP_ARGS]
    if help_args:
        print(entry_point_help(full=any("helpfull" in arg for arg in help_args)), end="")
        sys.exit(0)
    try:
        argv = FLAGS(argv)
    except flags.Error as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    if not FLAGS["verbosity"].present:
        # TensorFlow logs INFO lines (e.g. each checkpoint's "Sharding callback duration")
        # through absl; --verbosity=0 brings them back.
        absl_logging.set_verbosity(absl_logging.WARNING)
    return argv


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
    """The body of every entry point: parse the flags, then train or evaluate
    `make_task(config)`, which checks the data splits `config.splits` before anything is built;
    `after(trainer, task)` runs at the end (e.g. MutualNet's query table)."""

    def main(argv):
        del argv
        from bl_keras.training import runner

        return runner.run(make_task, train_config(), after=after)

    return run(main)
