"""Timing one model: inference steps of a compiled forward pass, or training steps of the trainer.

Inference times `tf.function(model(x, training=False))` on a fixed batch; training times the
real trainer's step (`train.trainer.Trainer.step_runner`: forward, backward, weight decay,
Nesterov update, under the same distribution strategy) on a synthetic in-memory stream, so the
input pipeline is not what is measured. Every step ends by reading its result back to the host.
"""

import dataclasses
import os
import shutil
import statistics
import tempfile
import time

import keras
import tensorflow as tf

from bl_keras import models, profiling
from bl_keras.benchmark import memory
from train.task import ClassificationTask
from train.trainer import TrainConfig, Trainer

MODES = ("infer", "train")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")


@dataclasses.dataclass
class BenchmarkResult:
    model: str
    mode: str
    batch: int
    size: int
    precision: str
    jit_compile: bool
    device: str
    steps: int
    images_per_sec: float  # median over the timed steps
    images_per_sec_min: float
    images_per_sec_max: float
    step_ms: float  # median
    macs: int  # forward multiply-accumulates per image (the paper's FLOPs)
    params: int
    peak_rss_mb: float
    gpu_peak_mb: float = None

    @property
    def gmacs(self):
        return self.macs / 1e9

    @property
    def gmacs_per_sec(self):
        """Forward GMACs per image x images/s (a training step does about three times this)."""
        return self.gmacs * self.images_per_sec

    @property
    def spread(self):
        """(max - min) / median of the per-step throughput."""
        return (self.images_per_sec_max - self.images_per_sec_min) / self.images_per_sec

    def as_dict(self):
        record = dataclasses.asdict(self)
        record.update(gmacs=self.gmacs, gmacs_per_sec=self.gmacs_per_sec, spread=self.spread)
        return record


def device_name():
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        return f"{len(gpus)}x {details.get('device_name', 'GPU')}"
    return f"CPU ({os.cpu_count()} cores)"


def input_shape(name, size):
    return models.get_entry(name).profile_shape(size)


def build_model(name, shape, classes):
    """Image models at `shape` with `classes` outputs; fixed-input models (speech) as registered."""
    if models.get_entry(name).input_shape is not None:
        return models.get(name)
    return models.get(name, input_shape=shape, classes=classes)


class SyntheticTask(ClassificationTask):
    """Classification over one fixed random batch, repeated: no input pipeline in the timings."""

    name = "synthetic"
    has_eval_data = False
    num_train_examples = 2**31 - 1

    def __init__(self, model_name, shape, classes):
        super().__init__()
        self.model_name, self.shape, self.num_classes = model_name, tuple(shape), classes

    def build_model(self, config):
        return build_model(self.model_name, self.shape, self.num_classes)

    def train_dataset(self, input_context, per_replica_batch, skip_examples):
        images = tf.random.stateless_uniform([per_replica_batch, *self.shape], seed=[1, 2])
        labels = tf.random.stateless_uniform([per_replica_batch], seed=[3, 4],
                                             maxval=self.num_classes, dtype=tf.int32)
        return tf.data.Dataset.from_tensors((images, labels)).repeat()


def _time_steps(run_step, warmup, steps):
    for _ in range(warmup):
        run_step()
    durations = []
    for _ in range(steps):
        start = time.perf_counter()
        run_step()
        durations.append(time.perf_counter() - start)
    return durations


def _inference_runner(name, shape, batch, classes, jit_compile):
    model = build_model(name, shape, classes)
    images = tf.random.stateless_uniform([batch, *shape], seed=[1, 2])
    forward = tf.function(lambda x: model(x, training=False), jit_compile=jit_compile)
    return model, lambda: forward(images).numpy()


def _training_runner(name, shape, batch, classes, precision, jit_compile, strategy, model_dir):
    config = TrainConfig(model_dir=model_dir, strategy=strategy, batch_size=batch,
                         eval_batch_size=batch, epochs=1, precision=precision,
                         jit_compile=jit_compile, progress=False)
    task = SyntheticTask(name, shape, classes)
    trainer = Trainer(task, config)
    step = trainer.step_runner()
    return trainer.model, lambda: float(step()["loss"])


def benchmark(name, mode="infer", batch=16, size=224, precision="float32", jit_compile=False,
              steps=10, warmup=3, classes=1000, strategy="auto"):
    """Time `steps` steps of model `name` after `warmup` untimed ones; a `BenchmarkResult`."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if batch < 1 or steps < 1 or warmup < 0:
        raise ValueError(f"need batch >= 1, steps >= 1, warmup >= 0 (got {batch}, {steps}, "
                         f"{warmup})")
    shape = input_shape(name, size)  # also rejects unknown names before any work
    if mode == "train" and models.get_entry(name).input_shape is not None:
        raise ValueError(f"--mode train times image classifiers; {name} is not one")
    memory.release_host_memory()
    memory.reset_peak_rss()
    memory.reset_gpu_peak()
    model_dir = tempfile.mkdtemp(prefix="bl_keras_benchmark_")
    previous_policy = keras.config.dtype_policy()
    try:
        if mode == "infer":
            keras.config.set_dtype_policy(precision)
            model, run_step = _inference_runner(name, shape, batch, classes, jit_compile)
        else:
            model, run_step = _training_runner(name, shape, batch, classes, precision,
                                               jit_compile, strategy, model_dir)
        durations = _time_steps(run_step, warmup, steps)
        peak_rss = memory.peak_rss_mb()
        gpu_peak = memory.gpu_peak_mb()
        keras.config.set_dtype_policy("float32")
        counted = profiling.profile(build_model(name, shape, classes), shape)
    finally:
        keras.config.set_dtype_policy(previous_policy)
        shutil.rmtree(model_dir, ignore_errors=True)
    rates = [batch / d for d in durations]
    del model
    keras.backend.clear_session()
    return BenchmarkResult(
        model=name, mode=mode, batch=batch, size=size, precision=precision,
        jit_compile=jit_compile, device=device_name(), steps=steps,
        images_per_sec=statistics.median(rates), images_per_sec_min=min(rates),
        images_per_sec_max=max(rates), step_ms=1e3 * statistics.median(durations),
        macs=counted.macs, params=counted.params, peak_rss_mb=peak_rss, gpu_peak_mb=gpu_peak,
    )


def speedups(results):
    """Images/s of each result relative to the first."""
    first = results[0].images_per_sec
    return [r.images_per_sec / first for r in results]


def baseline_of(name):
    """The plain counterpart of a bL model name (bl_resnet50 -> resnet50), else None."""
    prefix, dot, last = name.rpartition(".")
    plain = prefix + dot + last[len("bl_"):] if last.startswith("bl_") else None
    return plain if plain in models.list_models() else None
