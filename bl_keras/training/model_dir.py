"""What a run knows about its `--model_dir` before it builds anything: whether it can write there,
which configuration trained the checkpoints already there, and whether that run is complete.

Every training run writes its resolved configuration to `<model_dir>/config.json`:

    {"model": {...}, "run": {...}}

"model" holds the options the checkpoints depend on, which a later run into the same directory
must repeat: the task (imagenet, mutualnet, speech), the model name and its builder options, the
number of classes, and of the trainer options `MODEL_OPTIONS`:

* precision: mixed_float16 adds loss-scaling state to the optimizer;
* sync_bn: it changes the BatchNorm layers;
* batch_size: a checkpoint's step counts batches of this size, so the schedule and the resumed
  input position (step x batch) mean other examples with another batch.

A differing one stops the run at once (`ConfigError` on --model_dir naming old -> new). "run"
holds every other option (epochs, lr and its schedule, data location, image size, strategy,
evaluation...): they may change when a run is resumed, e.g. more --epochs to extend it (the
learning rate then follows the new schedule from the restored step); a change is reported.
Directories written before config.json existed are not checked; the next run writes it.
"""

import dataclasses
import json
import os

import tensorflow as tf

from bl_keras.training.config import ConfigError

CONFIG_FILE = "config.json"
MODEL_OPTIONS = ("precision", "sync_bn", "batch_size")


def check_writable(model_dir):
    """Refuse a --model_dir that is a file or cannot be written, without creating it (a run
    that stops at a later check leaves nothing behind)."""
    if os.path.exists(model_dir) and not os.path.isdir(model_dir):
        raise ConfigError("model_dir", f"{model_dir} is a file, not a directory")
    existing = os.path.abspath(model_dir)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise ConfigError("model_dir", f"cannot create {model_dir}: {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError("model_dir", f"cannot write to {existing}")


def run_record(task, config):
    """The resolved configuration of a run: {"model": must repeat, "run": may change}."""
    options = dataclasses.asdict(config)
    model = {"task": task.name, **task.model_config()}
    model.update({name: options.pop(name) for name in MODEL_OPTIONS})
    run = dict(options, **task.data_config())
    # Through JSON once, so a record compares equal to the one read back (tuples -> lists).
    return json.loads(json.dumps({"model": model, "run": run}))


def read_record(model_dir):
    path = os.path.join(model_dir, CONFIG_FILE)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        try:
            return json.load(f)
        except ValueError:
            raise ConfigError("model_dir", f"{path} is not valid JSON; delete it to use this "
                                           f"directory anyway") from None


def check_same_model(model_dir, record, training=True):
    """Refuse a model differing from the one the checkpoints in `model_dir` were trained as
    (evaluating, only the model itself must match, not `MODEL_OPTIONS`); returns the run
    options that changed, as "name: old -> new" strings."""
    previous = read_record(model_dir)
    if previous is None:
        return []
    ignored = () if training else MODEL_OPTIONS
    differing = [change for change in _changes(previous.get("model", {}), record["model"])
                 if change.split(":")[0] not in ignored]
    if differing:
        raise ConfigError("model_dir", f"{model_dir} holds a run of another model configuration "
                                       f"({'; '.join(differing)}); use a new --model_dir, or "
                                       f"delete {model_dir} to start afresh")
    return _changes(previous.get("run", {}), record["run"])


def write_record(model_dir, record):
    """Write config.json atomically (other workers may be reading it)."""
    os.makedirs(model_dir, exist_ok=True)
    path = os.path.join(model_dir, CONFIG_FILE)
    with open(path + ".tmp", "w") as f:
        json.dump(record, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(path + ".tmp", path)


def latest_step(model_dir):
    """The step of the latest checkpoint of the run (from its file name), or None."""
    latest = tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints"))
    return int(latest.rsplit("-", 1)[1]) if latest else None


def _changes(old, new):
    return [f"{name}: {_show(old.get(name))} -> {_show(new.get(name))}"
            for name in sorted(set(old) | set(new)) if old.get(name) != new.get(name)]


def _show(value):
    if value is None:
        return "(unset)"
    return value if isinstance(value, str) else json.dumps(value)
