"""Timing models: inference steps of a compiled forward pass, or training steps of the trainer.

Inference times `tf.function(model(x, training=False))` on a fixed batch, with BatchNorm folded
into the weights once as in an exported SavedModel (`bl_keras.layers.folded_inference`);
training times the real trainer's step (`bl_keras.training.Trainer.step_runner`: forward,
backward, weight decay, Nesterov update, under the same distribution strategy) on a synthetic
in-memory stream, so the input pipeline is not what is measured. Every step ends by reading its
result back to the host.
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
from bl_keras.layers.inference import fold_for_inference
from bl_keras.training import ClassificationTask, TrainConfig, Trainer

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


def build_model(name, shape, classes, builders=None):
    """Image models at `shape` with `classes` outputs; fixed-input models (speech) as registered;
    `builders` may give a name its own model (e.g. a trained run's, loaded)."""
    if builders and name in builders:
        return builders[name]()
    if models.get_entry(name).input_shape is not None:
        return models.get(name)
    return models.get(name, input_shape=shape, classes=classes)


class SyntheticTask(ClassificationTask):
    """Classification over one fixed random batch, repeated: no input pipeline in the timings."""

    name = "synthetic"
    has_eval_data = False
    num_train_examples = 2**31 - 1

    def __init__(self, model_name, shape, classes, builders=None):
        super().__init__()
        self.model_name, self.shape, self.num_classes = model_name, tuple(shape), classes
        self.builders = builders

    def build_model(self, config):
        return build_model(self.model_name, self.shape, self.num_classes, self.builders)

    def train_dataset(self, input_context, per_replica_batch, skip_examples):
        images = tf.random.stateless_uniform([per_replica_batch, *self.shape], seed=[1, 2])
        labels = tf.random.stateless_uniform([per_replica_batch], seed=[3, 4],
                                             maxval=self.num_classes, dtype=tf.int32)
        return tf.data.Dataset.from_tensors((images, labels)).repeat()


def _inference_runner(name, shape, batch, classes, jit_compile, builders):
    model = build_model(name, shape, classes, builders)
    fold_for_inference(model)  # as served (bl_keras.export), BatchNorm folded once
    images = tf.random.stateless_uniform([batch, *shape], seed=[1, 2])
    forward = tf.function(lambda x: model(x, training=False), jit_compile=jit_compile)
    return model, lambda: forward(images).numpy()


def _training_runner(name, shape, batch, classes, precision, jit_compile, strategy, model_dir,
                     builders):
    config = TrainConfig(model_dir=model_dir, strategy=strategy, batch_size=batch,
                         eval_batch_size=batch, epochs=1, precision=precision,
                         jit_compile=jit_compile, progress=False)
    task = SyntheticTask(name, shape, classes, builders)
    trainer = Trainer(task, config)
    step = trainer.step_runner()
    return trainer.model, lambda: float(step()["loss"])


def _check(names, mode, batch, precision, steps, warmup):
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if batch < 1 or steps < 1 or warmup < 0:
        raise ValueError(f"need batch >= 1, steps >= 1, warmup >= 0 (got {batch}, {steps}, "
                         f"{warmup})")
    for name in names:
        entry = models.get_entry(name)  # unknown names fail before any work
        if mode == "train" and entry.input_shape is not None:
            raise ValueError(f"--mode train times image classifiers; {name} is not one")


def benchmark_models(names, mode="infer", batch=16, size=224, precision="float32",
                     jit_compile=False, steps=10, warmup=3, classes=1000, strategy="auto",
                     builders=None):
    """Time `steps` steps of each model after `warmup` untimed ones; a `BenchmarkResult` each.

    The models take turns (each round runs one step of every model), so a machine whose speed
    drifts during the run (other load, clocks) shifts all models alike and the ratios hold.
    `peak_rss_mb` is the peak of the process while these models were built and timed: call with
    one model (or use the CLI's --isolate) for a model's own peak. `builders` ({name: a
    function returning a new model}) replaces the registry's model of a name.
    """
    names = list(names)
    _check(names, mode, batch, precision, steps, warmup)
    memory.release_host_memory()
    memory.reset_peak_rss()
    memory.reset_gpu_peak()
    model_dirs = []
    previous_policy = keras.config.dtype_policy()
    try:
        runners = []
        shapes = [input_shape(name, size) for name in names]
        for name, shape in zip(names, shapes):
            if mode == "infer":
                keras.config.set_dtype_policy(precision)
                _, run_step = _inference_runner(name, shape, batch, classes, jit_compile,
                                                builders)
            else:
                model_dirs.append(tempfile.mkdtemp(prefix="bl_keras_benchmark_"))
                _, run_step = _training_runner(name, shape, batch, classes, precision,
                                               jit_compile, strategy, model_dirs[-1], builders)
            runners.append(run_step)
        for run_step in runners:
            for _ in range(warmup):
                run_step()
        durations = [[] for _ in runners]
        for _ in range(steps):
            for run_step, timed in zip(runners, durations):
                start = time.perf_counter()
                run_step()
                timed.append(time.perf_counter() - start)
        peak_rss = memory.peak_rss_mb()
        gpu_peak = memory.gpu_peak_mb()
        del runners
        keras.config.set_dtype_policy("float32")
        counted = [profiling.profile(build_model(name, shape, classes, builders), shape)
                   for name, shape in zip(names, shapes)]
    finally:
        keras.config.set_dtype_policy(previous_policy)
        for model_dir in model_dirs:
            shutil.rmtree(model_dir, ignore_errors=True)
    keras.backend.clear_session()
    results = []
    for name, timed, count in zip(names, durations, counted):
        rates = [batch / d for d in timed]
        results.append(BenchmarkResult(
            model=name, mode=mode, batch=batch, size=size, precision=precision,
            jit_compile=jit_compile, device=device_name(), steps=steps,
            images_per_sec=statistics.median(rates), images_per_sec_min=min(rates),
            images_per_sec_max=max(rates), step_ms=1e3 * statistics.median(timed),
            macs=count.macs, params=count.params, peak_rss_mb=peak_rss, gpu_peak_mb=gpu_peak,
        ))
    return results


def benchmark(name, **options):
    """One model on its own (its own peak memory); options as `benchmark_models`."""
    return benchmark_models([name], **options)[0]


def speedups(results):
    """Images/s of each result relative to the first."""
    first = results[0].images_per_sec
    return [r.images_per_sec / first for r in results]


def split_names(value):
    """Model names from a comma-separated string (None when empty)."""
    return [n.strip() for n in value.split(",") if n.strip()] if value else None


def baseline_of(name):
    """The plain counterpart of a bL model name (bl_resnet50 -> resnet50), else None."""
    prefix, dot, last = name.rpartition(".")
    plain = prefix + dot + last[len("bl_"):] if last.startswith("bl_") else None
    return plain if plain in models.list_models() else None
