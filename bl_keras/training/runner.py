"""Runs a task with a `TrainConfig`: train, evaluate, or both; shared by every entry point."""

import json
import os
import sys

import keras
import tensorflow as tf

from bl_keras.training.distribute import configure_cpu_devices, make_strategy
from bl_keras.training.trainer import Trainer, TrainingDiverged


def load_for_eval(trainer, path):
    """Load weights to evaluate from a .keras file, a checkpoint prefix or a checkpoint dir."""
    if path.endswith(".keras"):
        if not os.path.exists(path):
            raise FileNotFoundError(f"no such model file: {path}")
        loaded = keras.models.load_model(path, compile=False)
        if len(loaded.weights) != len(trainer.model.weights):
            raise ValueError(f"{path} does not match the configured model "
                             f"({len(loaded.weights)} vs {len(trainer.model.weights)} weights)")
        trainer.model.set_weights(loaded.get_weights())
        return path
    prefix = tf.train.latest_checkpoint(path) if os.path.isdir(path) else path
    if not prefix:
        raise FileNotFoundError(f"no checkpoint in {path}")
    status = tf.train.Checkpoint(model=trainer.model).restore(prefix)
    status.expect_partial().assert_existing_objects_matched()
    return prefix


def run(make_task, config, after=None):
    """Run `make_task()` under `config`; exit status 0 done, 1 diverged or nothing to evaluate.

    The strategy is created first: MultiWorkerMirroredStrategy and virtual CPU devices must be
    set up before TensorFlow runs any op (building a task already reads its dataset).
    """
    configure_cpu_devices(config.cpu_devices)
    strategy = make_strategy(config.strategy, config.tpu)
    task = make_task()
    trainer = Trainer(task, config, strategy)
    if config.mode == "train":
        try:
            trainer.train()
        except TrainingDiverged as err:
            print(f"error: {err}", file=sys.stderr, flush=True)
            return 1
    else:
        source = config.eval_from or os.path.join(config.model_dir, "checkpoints")
        try:
            loaded = load_for_eval(trainer, source)
        except (FileNotFoundError, ValueError) as err:
            print(f"error: --eval_from: {err}", file=sys.stderr, flush=True)
            return 1
        result = trainer.evaluate()
        result["evaluated"] = loaded
        print(json.dumps(result), flush=True)
    if after is not None:
        after(trainer, task)
    trainer.report_fingerprint()
    return 0
