"""Runs a task with a `TrainConfig`: train, evaluate, or both; shared by every entry point."""

import json
import os
import sys

import tensorflow as tf

from bl_keras.layers.inference import check_weights_can_train
from bl_keras.saving import load_model
from bl_keras.training import model_dir
from bl_keras.training.distribute import configure_cpu_devices, make_strategy, worker_identity
from bl_keras.training.trainer import (Trainer, TrainingDiverged, checkpointed,
                                       planned_steps_per_epoch)


def load_for_eval(trainer, path):
    """Load weights to evaluate from a .keras file, a checkpoint prefix or a checkpoint dir."""
    if path.endswith(".keras"):
        if not os.path.exists(path):
            raise FileNotFoundError(f"no such model file: {path}")
        loaded = load_model(path)
        if len(loaded.weights) != len(trainer.model.weights):
            raise ValueError(f"{path} does not match the configured model "
                             f"({len(loaded.weights)} vs {len(trainer.model.weights)} weights)")
        trainer.model.set_weights(loaded.get_weights())
        return path
    prefix = tf.train.latest_checkpoint(path) if os.path.isdir(path) else path
    if not prefix:
        raise FileNotFoundError(f"no checkpoint in {path}")
    status = tf.train.Checkpoint(**checkpointed(trainer.model)).restore(prefix)
    status.expect_partial().assert_existing_objects_matched()
    return prefix


def run(make_task, config, after=None):
    """Run `make_task(config)` under `config`; exit status 0 done (or already complete), 1
    diverged, nothing to evaluate, or training asked of a process whose convolutions keep their
    first weights (`bl_keras.layers.inference.check_weights_can_train`).

    Everything that can be checked without building the model is checked first: the model
    directory, the data (the task checks the splits `config.splits` names when it is made) and
    the directory's config.json (`model_dir`); a run found complete stops there. The strategy is
    created before the task: MultiWorkerMirroredStrategy and virtual CPU devices must be set up
    before TensorFlow runs any op (making a task already reads its dataset).
    """
    if config.mode == "train":
        try:
            check_weights_can_train()
        except RuntimeError as err:
            print(f"error: {err}", file=sys.stderr, flush=True)
            return 1
    model_dir.check_writable(config.model_dir)
    configure_cpu_devices(config.cpu_devices)
    strategy = make_strategy(config.strategy, config.tpu)
    task = make_task(config)
    if config.mode == "train":
        if not _prepare_training(task, config, is_chief=worker_identity(strategy)[2]):
            return 0
    elif not config.eval_from:  # the run's own checkpoints: they must fit the model
        model_dir.check_same_model(config.model_dir, model_dir.run_record(task, config),
                                   training=False)
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


def _prepare_training(task, config, is_chief):
    """Check the model directory against this run and record it; False when the run there is
    already complete (its latest checkpoint is at the planned steps and model.keras is
    written), so there is nothing to do."""
    record = model_dir.run_record(task, config)
    changed = model_dir.check_same_model(config.model_dir, record)
    total = planned_steps_per_epoch(config, task.num_train_examples) * config.epochs
    done = model_dir.latest_step(config.model_dir)
    if (done is not None and done >= total
            and os.path.exists(os.path.join(config.model_dir, "model.keras"))):
        print(f"already complete: {done} steps, see {config.model_dir}", flush=True)
        return False
    if changed and is_chief:
        print(f"Changed since the last run in {config.model_dir}: {'; '.join(changed)}",
              flush=True)
    if is_chief:
        model_dir.write_record(config.model_dir, record)
    return True
