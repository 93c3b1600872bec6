"""Where a step's time goes (`python -m bl_keras.benchmark --breakdown [--mode train]`).

Two views of the same step, an inference step or a training step of the trainer:

- **op times**: the step run under the TensorFlow profiler; every op event of the host
  ("node:OpType") summed by op type and by kind (convolution, matmul, normalization, pooling,
  elementwise, copies such as pads, casts and broadcasts, other). A training step's ops are also
  split by phase: forward (ops under the model's name scope), backward (under the gradient
  tape's) and update (loss, weight decay, optimizer). On a multi-core CPU independent ops
  overlap (a bL model's branches), so the sum can exceed the step's wall time. On a GPU these
  are launch times, so the table is left out there.
- **convolutions alone**: every convolution of the traced inference graph, each distinct
  configuration (input shape, kernel, strides, padding, dtype) timed on its own, times how
  often it occurs: in inference as conv + bias + ReLU (what the inference graph fuses it to),
  in training as the convolution and its two gradients (input and kernel; the first layer's
  input gradient, which training skips, included), explicit paddings as the training graph
  does them (a Pad, not timed, before a "VALID" convolution). Their sum is the step time the
  model could reach if nothing but its convolutions cost anything, so "conv-bound" speed-ups
  bound what removing overheads can give on this machine.
"""

import collections
import dataclasses
import glob
import os
import re
import shutil
import statistics
import tempfile
import time

import numpy as np
import tensorflow as tf

from bl_keras import profiling
from bl_keras.layers.inference import fold_for_inference

_CONV_TYPES = ("Conv2D", "DepthwiseConv2dNative")
_COPY_TYPES = {
    "Pad", "PadV2", "MirrorPad", "BroadcastTo", "Tile", "Reshape", "Transpose", "ConcatV2",
    "Concat", "Pack", "Unpack", "Split", "SplitV", "Slice", "StridedSlice", "GatherV2",
    "ExpandDims", "Squeeze", "Identity", "IdentityN", "Cast",
}
_ELEMENTWISE_TYPES = {
    "Relu", "ReluGrad", "Relu6", "Relu6Grad", "Sigmoid", "SigmoidGrad", "Add", "AddV2", "AddN",
    "Sub", "Mul", "RealDiv", "DivNoNan", "Neg", "Square", "Sqrt", "Rsqrt", "Maximum", "Minimum",
    "BiasAdd", "BiasAddGrad", "Select", "SelectV2", "AssignAddVariableOp",
    "AssignSubVariableOp", "AssignVariableOp",
}
KINDS = ("convolution", "matmul", "normalization", "pooling", "elementwise", "copies", "other")
PHASES = ("forward", "backward", "update")
# A graph op's event is named "node_name:OpType"; host activities have other names.
_OP_EVENT = re.compile(r"^([^\s:]+):(_?[A-Z][A-Za-z0-9_]*)$")


@dataclasses.dataclass(frozen=True)
class ConvConfig:
    """One convolution of a graph, as TensorFlow runs it (NHWC)."""

    input_shape: tuple
    kernel_shape: tuple
    strides: tuple
    padding: object  # "SAME", "VALID" or ((top, bottom), (left, right))
    dilations: tuple
    dtype: str
    depthwise: bool

    @property
    def output_channels(self):
        k = self.kernel_shape
        return k[2] * k[3] if self.depthwise else k[3]

    @property
    def output_shape(self):
        sizes = []
        for axis in (0, 1):
            size, kernel = self.input_shape[1 + axis], self.kernel_shape[axis]
            stride, reach = self.strides[axis], (kernel - 1) * self.dilations[axis] + 1
            if self.padding == "SAME":
                sizes.append(-(-size // stride))
                continue
            pad = 0 if self.padding == "VALID" else sum(self.padding[axis])
            sizes.append((size + pad - reach) // stride + 1)
        return (self.input_shape[0], *sizes, self.output_channels)

    def as_trained(self):
        """This convolution as a training step runs it: an explicit padding becomes a Pad
        before a "VALID" convolution (what `bl_keras.layers.conv` does in training, since
        oneDNN has no gradient kernels for explicitly padded convolutions)."""
        if isinstance(self.padding, str):
            return self
        n, h, w, c = self.input_shape
        (top, bottom), (left, right) = self.padding
        return dataclasses.replace(self, input_shape=(n, h + top + bottom, w + left + right, c),
                                   padding="VALID")

    @property
    def macs(self):
        """Multiply-accumulates, by the rule of `bl_keras.profiling`."""
        per_output = self.kernel_shape[0] * self.kernel_shape[1]
        if not self.depthwise:
            per_output *= self.kernel_shape[2]  # input channels per group
        return int(np.prod(self.output_shape)) * per_output


@dataclasses.dataclass
class Breakdown:
    model: str
    batch: int
    convolutions: int  # convolution ops in the inference graph
    distinct_convolutions: int
    conv_alone_ms: float  # the convolutions timed one by one, summed
    op_ms: dict  # kind -> ms per step (None on a GPU)
    op_type_ms: dict  # op type (oneDNN prefixes dropped) -> ms per step (None on a GPU)
    mode: str = "infer"
    phase_ms: dict = None  # training: phase -> kind -> ms per step (None on a GPU)

    @property
    def conv_bound_images_per_sec(self):
        return 1e3 * self.batch / self.conv_alone_ms

    def as_dict(self):
        record = dataclasses.asdict(self)
        record.update(conv_bound_images_per_sec=self.conv_bound_images_per_sec)
        return record


def op_type(name):
    """Op type without the oneDNN rewrite prefixes: _MklNativeFusedConv2D -> FusedConv2D."""
    return re.sub(r"^_(MklNative|Mkl)?", "", name)


def op_kind(name):
    name = op_type(name)
    if "Conv" in name:
        return "convolution"
    if "MatMul" in name:
        return "matmul"
    if "BatchNorm" in name:
        return "normalization"
    if "Pool" in name:
        return "pooling"
    if name in _ELEMENTWISE_TYPES:
        return "elementwise"
    if name in _COPY_TYPES:
        return "copies"
    return "other"


def phase_of(node_name, model_name):
    """"forward", "backward" or "update" for the op `node_name` of a training step of the
    model `model_name`: by the first name scope (a replica's prefix dropped)."""
    scope = re.sub(r"^replica_\d+/", "", node_name).split("/")[0]
    if scope.startswith("gradient_tape"):
        return "backward"
    if re.fullmatch(re.escape(model_name) + r"(_\d+)?", scope):
        return "forward"
    return "update"


def convolutions(graph):
    """The `ConvConfig` of every convolution op in `graph` (nested functions included)."""
    configs = []
    for op in profiling.graph_ops(graph):
        if op.type not in _CONV_TYPES:
            continue
        if op.get_attr("data_format") != b"NHWC":
            raise ValueError(f"{op.name}: only NHWC convolutions are timed")
        padding = op.get_attr("padding").decode()
        if padding == "EXPLICIT":
            pads = op.get_attr("explicit_paddings")
            padding = ((pads[2], pads[3]), (pads[4], pads[5]))
        configs.append(ConvConfig(
            input_shape=tuple(op.inputs[0].shape.as_list()),
            kernel_shape=tuple(op.inputs[1].shape.as_list()),
            strides=tuple(op.get_attr("strides")[1:3]),
            padding=padding,
            dilations=tuple(op.get_attr("dilations")[1:3]),
            dtype=op.get_attr("T").name,
            depthwise=op.type == "DepthwiseConv2dNative",
        ))
    return configs


def _conv_step(config, training=False):
    """A compiled step of `config` on fixed random data: conv + bias + ReLU (inference), or the
    convolution and its input and kernel gradients (training). Calling it waits for the result
    but copies back a single element, not the whole output."""
    dtype = tf.as_dtype(config.dtype)
    rng = np.random.default_rng(0)
    inputs = tf.constant(rng.random(config.input_shape, np.float32), dtype=dtype)
    fan_in = int(np.prod(config.kernel_shape[:3]))
    kernel = tf.Variable(tf.constant(rng.standard_normal(config.kernel_shape, np.float32)
                                     / np.sqrt(fan_in), dtype=dtype))
    bias = tf.Variable(tf.zeros([config.output_channels], dtype))
    upstream = tf.constant(rng.standard_normal(config.output_shape, np.float32), dtype=dtype)
    padding = config.padding
    if not isinstance(padding, str):
        padding = [[0, 0], *[list(p) for p in padding], [0, 0]]

    def convolve(x, k):
        if config.depthwise:
            return tf.nn.depthwise_conv2d(x, k, [1, *config.strides, 1], padding,
                                          dilations=config.dilations)
        return tf.nn.conv2d(x, k, config.strides, padding, dilations=config.dilations)

    @tf.function
    def step():
        if not training:
            return tf.nn.relu(tf.nn.bias_add(convolve(inputs, kernel), bias))[:1, :1, :1, :1]
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            y = convolve(inputs, kernel)
        d_inputs, d_kernel = tape.gradient(y, [inputs, kernel], output_gradients=upstream)
        return (y[:1, :1, :1, :1], d_inputs[:1, :1, :1, :1], d_kernel[:1, :1, :1, :1])

    return lambda: [t.numpy() for t in tf.nest.flatten(step())]


def _median_ms(run, steps, warmup):
    for _ in range(warmup):
        run()
    timed = []
    for _ in range(steps):
        start = time.perf_counter()
        run()
        timed.append(time.perf_counter() - start)
    return 1e3 * statistics.median(timed)


def call_overhead_ms(steps=50):
    """Median time of calling a compiled function that does nothing but return one element:
    what every timed convolution pays on top of its kernel, subtracted from its time."""
    one = tf.zeros([1, 1, 1, 1])
    nothing = tf.function(lambda: tf.identity(one))
    return _median_ms(lambda: nothing().numpy(), steps, warmup=5)


def time_convolutions(configs, steps=10, warmup=2, cache=None, training=False):
    """Median milliseconds of each distinct config in `configs`, timed alone (with its two
    gradients when `training`), less the call overhead. `cache` (a dict) is read and filled,
    so models sharing layers share timings."""
    cache = {} if cache is None else cache
    overhead = cache.get("call_overhead_ms")
    if overhead is None:
        overhead = cache["call_overhead_ms"] = call_overhead_ms()
    for config in dict.fromkeys(configs):
        key = (config, training)
        if key not in cache:
            cache[key] = max(_median_ms(_conv_step(config, training), steps, warmup) - overhead,
                             0.0)
    return {config: cache[(config, training)] for config in configs}


def _xplane_module():
    try:
        from tensorflow.tsl.profiler.protobuf import xplane_pb2
    except ImportError:  # where TensorFlow ships TSL as a top-level package
        from tsl.profiler.protobuf import xplane_pb2
    return xplane_pb2


def _profile_events(run, steps):
    """(node name, op type, ms per call) of every op event while `run()` is called `steps`
    times under the TensorFlow profiler (host events)."""
    logdir = tempfile.mkdtemp(prefix="bl_keras_breakdown_")
    try:
        tf.profiler.experimental.start(logdir)
        try:
            for _ in range(steps):
                run()
        finally:
            tf.profiler.experimental.stop()
        paths = glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True)
        if not paths:
            raise RuntimeError("the TensorFlow profiler wrote no trace")
        space = _xplane_module().XSpace()
        with open(paths[0], "rb") as trace:
            space.ParseFromString(trace.read())
    finally:
        shutil.rmtree(logdir, ignore_errors=True)
    for plane in space.planes:
        for line in plane.lines:
            for event in line.events:
                match = _OP_EVENT.match(plane.event_metadata[event.metadata_id].name)
                if match:
                    yield match.group(1), op_type(match.group(2)), event.duration_ps / 1e9 / steps


def profile_op_times(run, steps=3):
    """Milliseconds per call of each op type while `run()` is called `steps` times under the
    TensorFlow profiler (host op events)."""
    totals = collections.Counter()
    for _, kind_of, ms in _profile_events(run, steps):
        totals[kind_of] += ms
    return dict(totals)


def profile_phase_times(run, model_name, steps=3):
    """{phase: {op type: ms per call}} of a training step of `model_name` (see `phase_of`)."""
    totals = {phase: collections.Counter() for phase in PHASES}
    for node, kind_of, ms in _profile_events(run, steps):
        totals[phase_of(node, model_name)][kind_of] += ms
    return {phase: dict(times) for phase, times in totals.items()}


def _by_kind(op_type_ms):
    kinds = {kind: 0.0 for kind in KINDS}
    for kind_of, ms in op_type_ms.items():
        kinds[op_kind(kind_of)] += ms
    return kinds


def breakdown(name, forward, images, conv_steps=10, profile_steps=3, cache=None,
              training_step=None, model_name=None):
    """The `Breakdown` of `forward(images)` (a `tf.function` of `model(images, training=False)`,
    whose traced graph gives the convolutions), or, given `training_step` (a function running
    one training step of the model called `model_name`), of that step."""
    batch = images.shape[0]
    training = training_step is not None
    configs = convolutions(forward.get_concrete_function(images).graph)
    if not configs:
        raise ValueError(f"{name} has no convolutions to time")
    if training:
        configs = [config.as_trained() for config in configs]
    conv_ms = time_convolutions(configs, steps=conv_steps, cache=cache, training=training)
    op_type_ms = op_ms = phase_ms = None
    if not tf.config.list_physical_devices("GPU"):
        if training:
            by_phase = profile_phase_times(training_step, model_name, profile_steps)
            phase_ms = {phase: _by_kind(times) for phase, times in by_phase.items()}
            op_type_ms = collections.Counter()
            for times in by_phase.values():
                op_type_ms.update(times)
            op_type_ms = dict(op_type_ms)
        else:
            op_type_ms = profile_op_times(lambda: forward(images).numpy(), profile_steps)
        op_ms = _by_kind(op_type_ms)
    return Breakdown(
        model=name, batch=int(batch), convolutions=len(configs),
        distinct_convolutions=len(set(configs)),
        conv_alone_ms=sum(conv_ms[c] for c in configs), op_ms=op_ms, op_type_ms=op_type_ms,
        mode="train" if training else "infer", phase_ms=phase_ms)


def breakdown_models(names, batch=16, size=224, precision="float32", classes=1000,
                     conv_steps=10, profile_steps=3, mode="infer", strategy="auto"):
    """A `Breakdown` of each model's inference step (`mode="infer"`) or training step of the
    trainer (`"train"`); models share convolution timings."""
    import keras

    from bl_keras.benchmark import measure

    cache, results = {}, []
    previous_policy = keras.config.dtype_policy()
    model_dirs = []
    try:
        for name in names:
            shape = measure.input_shape(name, size)
            training_step = None
            if mode == "train":
                model_dirs.append(tempfile.mkdtemp(prefix="bl_keras_breakdown_"))
                model, training_step = measure._training_runner(
                    name, shape, batch, classes, precision, False, strategy, model_dirs[-1],
                    None)
                for _ in range(2):  # trace, then one warm step
                    training_step()
            keras.config.set_dtype_policy(precision)
            if mode != "train":
                model = measure.build_model(name, shape, classes)
                fold_for_inference(model)  # as measure times it
            images = tf.random.stateless_uniform([batch, *shape], seed=[1, 2])
            forward = tf.function(lambda x, model=model: model(x, training=False))
            for _ in range(2):
                forward(images).numpy()
            results.append(breakdown(name, forward, images, conv_steps, profile_steps, cache,
                                     training_step, model.name))
    finally:
        keras.config.set_dtype_policy(previous_policy)
        for model_dir in model_dirs:
            shutil.rmtree(model_dir, ignore_errors=True)
    return results


def format_breakdowns(breakdowns, results):
    """A table: measured step, the convolutions alone, and the profiler's op times by kind;
    for training steps, then each model's op times by kind and phase."""
    first_bound = breakdowns[0].conv_alone_ms
    training = breakdowns[0].mode == "train"
    alone = "conv+grads alone" if training else "conv alone ms"
    header = (f"{'model':<24} {'step ms':>8} {'convs':>5} {alone:>16} "
              f"{'conv share':>10} {'conv-bound x first':>18}"
              + "".join(f" {kind:>13}" for kind in KINDS))
    lines = [f"where the time goes ({'training' if training else 'inference'} step): "
             "convolutions timed alone at their shapes; op times per step (ms) from the "
             "TensorFlow profiler (overlapping ops counted in full)", header, "-" * len(header)]
    for item, result in zip(breakdowns, results):
        line = (f"{item.model:<24} {result.step_ms:>8.1f} {item.convolutions:>5} "
                f"{item.conv_alone_ms:>16.1f} {item.conv_alone_ms / result.step_ms:>10.0%} "
                f"{first_bound / item.conv_alone_ms:>18.2f}")
        if item.op_ms is not None:
            line += "".join(f" {item.op_ms[kind]:>13.1f}" for kind in KINDS)
        lines.append(line)
    for item in breakdowns:
        if item.phase_ms is None:
            continue
        lines += ["", f"{item.model}: op times per training step (ms) by kind and phase",
                  f"{'kind':<14}" + "".join(f" {phase:>9}" for phase in PHASES) + f" {'all':>9}"]
        for kind in KINDS:
            row = [item.phase_ms[phase][kind] for phase in PHASES]
            lines.append(f"{kind:<14}" + "".join(f" {ms:>9.1f}" for ms in row)
                         + f" {sum(row):>9.1f}")
        totals = [sum(item.phase_ms[phase].values()) for phase in PHASES]
        lines.append(f"{'all':<14}" + "".join(f" {ms:>9.1f}" for ms in totals)
                     + f" {sum(totals):>9.1f}")
    return "\n".join(lines)
