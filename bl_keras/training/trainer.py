"""One custom training loop for every `tf.distribute` strategy.

Keras 3 `model.fit` does not run under MultiWorkerMirroredStrategy, so training is a replica step
(`strategy.run` inside a `tf.function`) over `strategy.distribute_datasets_from_function`; the
same code runs on one CPU, many GPUs, many workers and TPUs.

Runs survive: checkpoints (model, optimizer with its step counter, the best validation value of
the task's `primary_metric`, top-1 or detection's mAP, kept under the name "best_top1" so older
checkpoints restore) are written every `checkpoint_every` steps and at every epoch end; a
restarted run restores the latest and continues the same step sequence: the learning rate is a
function of the restored step, and the input stream skips the examples already consumed. A
non-finite loss stops the run before anything is saved, so the last checkpoint stays good.
"""

import hashlib
import json
import math
import os
import shutil
import time

import keras
import numpy as np
import tensorflow as tf

from bl_keras.layers.inference import check_weights_can_train
from bl_keras.training.config import ConfigError
from bl_keras.training.distribute import make_strategy, worker_identity
from bl_keras.training.optimizers import FusedSGD
from bl_keras.training.schedules import WarmupSchedule


class TrainingDiverged(RuntimeError):
    """The loss became NaN or Inf."""


def weights_fingerprint(model):
    """A short hash of every weight of `model` (replicas and runs agree iff their weights do)."""
    digest = hashlib.sha256()
    for weight in model.weights:
        digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(weight)).tobytes())
    return digest.hexdigest()[:16]


def untracked_weights(model):
    """The weights of `model` that `tf.train.Checkpoint(model=model)` would not save.

    Checkpoints follow a layer's attributes, not Keras' tracked lists or dicts of sublayers: a
    model keeping blocks in a list would save (and restore) only part of itself, silently."""
    checkpoint = tf.train.Checkpoint(model=model)
    saved = {id(obj) for obj in tf.train.TrackableView(checkpoint).descendants()}
    return [w for w in model.weights if id(w) not in saved]


def checkpointed(model):
    """The objects a checkpoint of `model` saves: the model, and the weights its object graph
    misses (layers kept in lists or dicts, e.g. KerasHub's feature pyramid), saved by their
    position in `model.weights`, which is the same for every build of one architecture."""
    missing = untracked_weights(model)
    return {"model": model, **({"untracked_weights": missing} if missing else {})}


def is_decayed(variable, decay_all):
    """Coupled L2 applies to convolution and dense kernels (Tensorpack) or to everything."""
    return decay_all or variable.path.endswith("kernel")


def planned_steps_per_epoch(config, num_train_examples):
    """--steps_per_epoch, or the training examples // batch (1 when evaluating only, which reads
    no training split)."""
    if config.steps_per_epoch:
        return config.steps_per_epoch
    if num_train_examples is None:
        return 1
    if num_train_examples < config.batch_size:
        raise ConfigError("batch_size", f"{config.batch_size} exceeds the "
                                        f"{num_train_examples} training examples")
    return num_train_examples // config.batch_size


class Trainer:
    def __init__(self, task, config, strategy=None):
        self.task = task
        self.config = config
        keras.config.set_dtype_policy(config.precision)
        self.strategy = strategy or make_strategy(config.strategy, config.tpu)
        self.task_type, self.task_id, self.is_chief = worker_identity(self.strategy)
        replicas = self.strategy.num_replicas_in_sync
        for flag in ("batch_size", "eval_batch_size"):
            if getattr(config, flag) % replicas:
                raise ConfigError(flag, f"{getattr(config, flag)} is not divisible by the "
                                        f"{replicas} replicas of the strategy")
        self.steps_per_epoch = planned_steps_per_epoch(config, task.num_train_examples)
        self.evaluates = config.eval and task.has_eval_data
        self.total_steps = self.steps_per_epoch * config.epochs
        keras.utils.set_random_seed(config.seed)
        with self.strategy.scope():
            self.model = task.build_model(config)
            self.schedule = WarmupSchedule(
                config.lr * config.batch_size / config.lr_batch_reference,
                self.total_steps,
                warmup_steps=round(config.warmup_epochs * self.steps_per_epoch),
                kind=config.lr_schedule, steps_per_epoch=self.steps_per_epoch,
                halving_start_epoch=config.lr_halving_start_epoch,
                step_epochs=config.step_epochs, step_factor=config.lr_step_factor,
            )
            if config.optimizer == "adam":
                optimizer = keras.optimizers.Adam(self.schedule, epsilon=1e-8)
            else:
                optimizer = FusedSGD(self.schedule, momentum=config.momentum,
                                     nesterov=config.nesterov)
            if config.precision == "mixed_float16":
                optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
            self.optimizer = optimizer
            self.optimizer.build(self.model.trainable_variables)
            task.attach(self.optimizer.iterations)
            self.best_top1 = tf.Variable(-1.0, trainable=False, name="best_top1")
        self.checkpoint = tf.train.Checkpoint(**checkpointed(self.model),
                                              optimizer=self.optimizer, best_top1=self.best_top1)
        os.makedirs(config.model_dir, exist_ok=True)
        self._ckpt_dir = os.path.join(config.model_dir, "checkpoints")
        if not self.is_chief:  # other workers write their share where nobody reads it
            self._ckpt_dir = os.path.join(config.model_dir, f".worker{self.task_id}_checkpoints")
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, self._ckpt_dir,
            max_to_keep=config.keep_checkpoints if self.is_chief else 1)
        self._train_step = None
        self._eval_step = None
        self._state_sync = None
        self._writer = None

    # ---- steps ------------------------------------------------------------------------------

    @property
    def global_step(self):
        return int(self.optimizer.iterations.numpy())

    def _gradients(self, batch):
        """Forward + backward of one replica: (gradients, metric sums)."""
        config = self.config
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            per_example, logits, labels = self.task.compute_loss(
                self.model, batch, training=True, label_smoothing=config.label_smoothing)
            loss = tf.reduce_sum(per_example) / config.batch_size
            scaled = self.optimizer.scale_loss(loss)
        grads = tape.gradient(scaled, variables)
        return grads, self.task.metric_sums(per_example, logits, labels)

    def _replica_train_step(self, batch):
        config = self.config
        replicas = self.strategy.num_replicas_in_sync
        variables = self.model.trainable_variables
        gradients = self._gradients
        if config.jit_compile:
            gradients = tf.function(gradients, jit_compile=True)
        grads, sums = gradients(batch)
        scale = getattr(self.optimizer, "dynamic_scale", None)
        decays, multipliers = self._variable_rules(variables)
        if config.clip_global_norm:
            # Clipping needs the summed gradient: reduce here, and hand the optimizer (which
            # sums over replicas again) 1/replicas of it.
            ctx = tf.distribute.get_replica_context()
            grads = ctx.all_reduce(tf.distribute.ReduceOp.SUM, grads)
            if scale is not None:
                grads = [g / tf.cast(scale, g.dtype) for g in grads]
            grads = [g + d * v if d else g for g, v, d in zip(grads, variables, decays)]
            grads, _ = tf.clip_by_global_norm(grads, config.clip_global_norm)
            if scale is not None:
                grads = [g * tf.cast(scale, g.dtype) for g in grads]
            grads = [g / replicas for g in grads]
        elif any(decays):
            # The optimizer sums gradients over replicas: each adds its 1/replicas of wd * w.
            grads = [g + (d / replicas) * tf.cast(scale if scale is not None else 1.0, g.dtype)
                     * v if d else g for g, v, d in zip(grads, variables, decays)]
        # SGD with momentum is linear in the gradients: scaling one is scaling its learning rate.
        grads = [g * m if m != 1 else g for g, m in zip(grads, multipliers)]
        self.optimizer.apply(grads, variables)
        return sums

    def _variable_rules(self, variables):
        """(weight decay, learning-rate multiplier) of each variable: the config's coupled L2
        on the decayed variables, unless the task's `variable_rule(variable)` returns its own
        (multiplier, weight decay or None for the default)."""
        config = self.config
        decays = [config.weight_decay if is_decayed(v, config.weight_decay_all) else 0.0
                  for v in variables]
        rule = getattr(self.task, "variable_rule", None)
        if rule is None:
            return decays, [1.0] * len(variables)
        multipliers = []
        for i, variable in enumerate(variables):
            multiplier, decay = rule(variable)
            multipliers.append(float(multiplier))
            if decay is not None:
                decays[i] = float(decay)
        if config.optimizer != "sgd" and any(m != 1 for m in multipliers):
            raise ConfigError("optimizer", "per-variable learning rates need SGD (a multiplied "
                                           "gradient is a multiplied learning rate only there)")
        return decays, multipliers

    def _make_state_sync(self):
        """Average the non-trainable state (BatchNorm moving statistics) over all replicas.

        Keras 3 keeps one copy of each BN moving statistic per replica and updates it with that
        replica's batch only; reading returns replica 0's. Moving averages are linear in the batch
        statistics, so averaging the copies at sync points (evaluation, checkpoints, the end) is
        exactly the moving average of the replica-averaged statistics.
        """
        variables = self.model.non_trainable_variables
        if self.strategy.num_replicas_in_sync == 1 or not variables:
            return lambda: None

        def replica_sync():
            ctx = tf.distribute.get_replica_context()
            local = [tf.identity(v.value) for v in variables]  # this replica's copies
            means = ctx.all_reduce(tf.distribute.ReduceOp.MEAN, local)
            for variable, mean in zip(variables, means):
                variable.assign(mean)

        return tf.function(lambda: self.strategy.run(replica_sync))

    def sync_replicas(self):
        if self._state_sync is None:
            self._state_sync = self._make_state_sync()
        self._state_sync()

    def _reduce(self, per_replica):
        return {k: self.strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)
                for k, v in per_replica.items()}

    def _make_train_step(self):
        check_weights_can_train()  # a oneDNN weight cache would train nothing, silently

        @tf.function
        def train_step(iterator):
            return self._reduce(self.strategy.run(self._replica_train_step,
                                                  args=(next(iterator),)))
        return train_step

    def _make_eval_step(self):
        def replica_eval_step(batch):
            per_example, logits, labels = self.task.compute_loss(self.model, batch,
                                                                 training=False)
            return self.task.metric_sums(per_example, logits, labels)

        @tf.function
        def eval_step(batch):
            return self._reduce(self.strategy.run(replica_eval_step, args=(batch,)))
        return eval_step

    # ---- data -------------------------------------------------------------------------------

    def _train_iterator(self, start_step):
        config = self.config

        def dataset_fn(input_context):
            per_replica = input_context.get_per_replica_batch_size(config.batch_size)
            replicas_per_pipeline = (input_context.num_replicas_in_sync
                                     // input_context.num_input_pipelines)
            skip = start_step * per_replica * replicas_per_pipeline
            return self.task.train_dataset(input_context, per_replica, skip)

        return iter(self.strategy.distribute_datasets_from_function(dataset_fn))

    def _eval_dataset(self):
        config = self.config

        def dataset_fn(input_context):
            per_replica = input_context.get_per_replica_batch_size(config.eval_batch_size)
            return self.task.eval_dataset(input_context, per_replica)

        if not self.task.has_eval_data:
            return None
        return self.strategy.distribute_datasets_from_function(dataset_fn)

    # ---- reporting --------------------------------------------------------------------------

    def _log(self, record):
        if not self.is_chief:
            return
        with open(os.path.join(self.config.model_dir, "metrics.jsonl"), "a") as f:
            f.write(json.dumps(record) + "\n")
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(
                os.path.join(self.config.model_dir, "tensorboard"))
        with self._writer.as_default(step=record["step"]):
            for key, value in record.items():
                if key not in ("epoch", "step") and isinstance(value, (int, float)):
                    tf.summary.scalar(key, value)
        self._writer.flush()

    @staticmethod
    def _averages(sums):
        """Per-example averages of the metric sums: loss, top1, top5 and any a task adds
        (e.g. BlockDrop's blocks per image)."""
        count = max(sums.get("count", 0.0), 1.0)
        return {k: v / count for k, v in sums.items() if k != "count"}

    def _metrics(self, averages, prefix):
        """The metrics of `averages` (the task's: loss, top1, top5, ... in its order) named
        with `prefix`, leaving out the example counts and rates reported on their own."""
        unit = self.task.example_unit
        return {f"{prefix}{k}": v for k, v in averages.items()
                if k not in (unit, f"{unit}_per_sec")}

    # ---- checkpoints ------------------------------------------------------------------------

    def _save_checkpoint(self):
        self.sync_replicas()
        self.manager.save(checkpoint_number=self.global_step)
        if not self.is_chief:
            shutil.rmtree(self._ckpt_dir, ignore_errors=True)

    def _save_keras(self, name):
        if self.is_chief:
            self.model.save(os.path.join(self.config.model_dir, name))

    # ---- public -----------------------------------------------------------------------------

    def restore(self):
        """Restore the latest checkpoint of the run, if any; returns the global step."""
        latest = tf.train.latest_checkpoint(os.path.join(self.config.model_dir, "checkpoints"))
        if latest:
            self.checkpoint.restore(latest).assert_consumed()
            print(f"Resumed from {latest} at step {self.global_step}", flush=True)
        return self.global_step

    def evaluate(self):
        """Top-1/top-5/loss, examples and examples/s on the evaluation set (named by the
        task's unit: images, images_per_sec), or what the task's own `evaluate_model(model,
        config)` measures (detection: mAP over decoded boxes, which no per-batch sum gives)."""
        own = getattr(self.task, "evaluate_model", None)
        if own is not None:
            if not self.task.has_eval_data:
                return {}
            self.sync_replicas()
            return own(self.model, self.config)
        dataset = self._eval_dataset()
        if dataset is None:
            return {}
        if self._eval_step is None:
            self._eval_step = self._make_eval_step()
        self.sync_replicas()
        totals, start, steps = {}, time.time(), 0
        for batch in dataset:
            sums = self._eval_step(batch)
            for k, v in sums.items():
                totals[k] = totals.get(k, 0.0) + float(v)
            steps += 1
            if self.config.eval_steps and steps >= self.config.eval_steps:
                break
        elapsed = max(time.time() - start, 1e-9)
        result = self._averages(totals) if totals else {"loss": float("nan"), "top1": 0.0,
                                                        "top5": 0.0}
        unit = self.task.example_unit
        result.update({unit: int(totals.get("count", 0)),
                       f"{unit}_per_sec": totals.get("count", 0) / elapsed})
        return result

    def step_runner(self, start_step=0):
        """A callable that runs one training step (forward, backward, update on every replica)
        on the task's stream from `start_step`, returning the batch's summed metrics."""
        if self._train_step is None:
            self._train_step = self._make_train_step()
        iterator = self._train_iterator(start_step)
        return lambda: self._train_step(iterator)

    def train(self):
        """Train to `epochs * steps_per_epoch` steps, resuming from the latest checkpoint."""
        config = self.config
        start_step = self.restore()
        run_step = self.step_runner(start_step)
        replicas = self.strategy.num_replicas_in_sync
        print(f"Training {self.model.name}: {self.total_steps} steps "
              f"({config.epochs} epochs x {self.steps_per_epoch}), global batch "
              f"{config.batch_size} on {replicas} replica(s)", flush=True)
        if not self.evaluates:
            print("Training without validation (--noeval or no validation data): no val_* "
                  "metrics, no best.keras", flush=True)
        unit, per_sec = self.task.example_unit, f"{self.task.example_unit}_per_sec"
        rate_label = f"{unit}/s"

        last_record = None
        while self.global_step < self.total_steps:
            epoch = self.global_step // self.steps_per_epoch
            epoch_end = (epoch + 1) * self.steps_per_epoch
            shown = ("loss", "top1")
            progbar = keras.utils.Progbar(self.steps_per_epoch, stateful_metrics=[
                *shown, rate_label]) if (config.progress and self.is_chief) else None
            if progbar is not None:
                print(f"Epoch {epoch + 1}/{config.epochs}", flush=True)
            totals, examples, busy = {}, 0.0, 0.0
            while self.global_step < epoch_end:
                tick = time.time()
                sums = {k: float(v) for k, v in run_step().items()}
                busy += time.time() - tick
                step = self.global_step
                batch_loss = sums["loss"] / max(sums["count"], 1.0)
                if not math.isfinite(batch_loss):
                    raise TrainingDiverged(
                        f"Loss is {batch_loss} at step {step}; stopping without saving. The last "
                        f"good checkpoint is in {self._ckpt_dir}.")
                for k, v in sums.items():
                    totals[k] = totals.get(k, 0.0) + v
                examples += sums["count"]
                if progbar is not None:
                    averages = self._averages(totals)
                    progbar.update(step - epoch * self.steps_per_epoch, [
                        *((k, averages[k]) for k in shown if k in averages),
                        (rate_label, examples / max(busy, 1e-9))])
                if step % config.checkpoint_every == 0 and step < epoch_end:
                    self._save_checkpoint()

            train = self._averages(totals)
            record = {"epoch": epoch + 1, "step": self.global_step,
                      "lr": float(self.schedule(self.global_step - 1)),
                      **self._metrics(train, "train_"),
                      per_sec: examples / max(busy, 1e-9),
                      f"skipped_{self.task.skipped_unit}": int(self.task.skipped_inputs())}
            val = self.evaluate() if self.evaluates else {}
            if val:
                record.update(self._metrics(val, "val_"))
                record[f"eval_{per_sec}"] = val[per_sec]
                primary = val[self.task.primary_metric]
                if primary > float(self.best_top1.numpy()):
                    self.best_top1.assign(primary)
                    self._save_keras("best.keras")
            self._save_checkpoint()
            self._log(record)
            last_record = record
            if self.is_chief:
                print(json.dumps(record), flush=True)

        self.sync_replicas()
        self._save_keras("model.keras")
        return last_record

    def report_fingerprint(self):
        line = f"global_step={self.global_step} weights_fingerprint={weights_fingerprint(self.model)}"
        print(line, flush=True)
        return line
