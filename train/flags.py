"""Flags shared by every trainer (image, speech, MutualNet), and one-line flag errors.

The trainer flags are derived from the `TrainConfig` declaration (`bl_keras.training.config`):
one flag per option, same name, help text, choices and default. Every entry point defines its
own task flags next to these, parses with `run(main)`, and turns flag values into a
`TrainConfig` with `train_config()`.
"""

import dataclasses
import sys

from absl import app, flags

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


def train_config():
    """A `TrainConfig` from the trainer flags, validated; `FlagError` names a bad flag."""
    return TrainConfig(**{field.name: getattr(FLAGS, field.name)
                          for field in dataclasses.fields(TrainConfig)})


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

        return runner.run(make_task, train_config(), after=after)

    return run(main)
