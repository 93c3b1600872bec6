"""`bl_keras.benchmark.breakdown`: the convolutions of a graph, timed alone, and op times."""

import json
import subprocess
import sys

import pytest
import tensorflow as tf

from bl_keras import models, profiling
from bl_keras.benchmark import breakdown

RESNET50_CONVS, BL_RESNET50_CONVS = 53, 71


def _conv_ops(graph):
    return [op for op in profiling.graph_ops(graph) if op.type in breakdown._CONV_TYPES]


@pytest.mark.parametrize("name, size, options", [
    ("bl_resnet50", 64, {}),  # explicit padding, strides, the average-pool shortcut
    ("bl_resnext50_32x4d", 64, {}),  # grouped convolutions
    ("bl_shufflenet_v2_x1_0", 64, {}),  # depthwise convolutions
])
def test_configs_reproduce_every_convolution(name, size, options):
    model = models.get(name, input_shape=(size, size, 3), **options)
    graph = profiling.inference_graph(model, (size, size, 3), batch=2)
    configs = breakdown.convolutions(graph)
    ops = _conv_ops(graph)
    assert len(configs) == len(ops) > 0
    for config, op in zip(configs, ops):
        assert config.output_shape == tuple(op.outputs[0].shape.as_list()), op.name
    # Their MACs are the model's (batch 2), less the classifier's matrix product.
    dense = 2 * model.layers[-1].kernel.shape[0] * model.layers[-1].kernel.shape[1]
    assert sum(c.macs for c in configs) == 2 * profiling.count_macs(model, (size, size, 3)) - dense


def test_distinct_configs_are_timed_once_and_shared_through_the_cache():
    config = breakdown.ConvConfig(input_shape=(2, 16, 16, 8), kernel_shape=(3, 3, 8, 16),
                                  strides=(2, 2), padding=((1, 1), (1, 1)), dilations=(1, 1),
                                  dtype="float32", depthwise=False)
    assert config.output_shape == (2, 8, 8, 16) and config.macs == 2 * 8 * 8 * 16 * 72
    depthwise = breakdown.ConvConfig(input_shape=(2, 16, 16, 8), kernel_shape=(3, 3, 8, 1),
                                     strides=(1, 1), padding="SAME", dilations=(1, 1),
                                     dtype="float32", depthwise=True)
    assert depthwise.output_shape == (2, 16, 16, 8) and depthwise.macs == 2 * 16 * 16 * 8 * 9
    # Training pads first and convolves "VALID": same output, same MACs.
    trained = config.as_trained()
    assert (trained.input_shape, trained.padding) == ((2, 18, 18, 8), "VALID")
    assert (trained.output_shape, trained.macs) == (config.output_shape, config.macs)
    assert depthwise.as_trained() == depthwise
    cache = {}
    timed = breakdown.time_convolutions([config, depthwise, config], steps=3, cache=cache)
    assert set(timed) == {config, depthwise}
    assert all(ms >= 0 for ms in timed.values()) and cache["call_overhead_ms"] > 0
    cache[(config, False)] = 123.0  # a cached timing is used, not measured again
    assert breakdown.time_convolutions([config], cache=cache) == {config: 123.0}


@pytest.mark.parametrize("name, kind", [
    ("_MklNativeFusedConv2D", "convolution"), ("DepthwiseConv2dNative", "convolution"),
    ("_MklNativeFusedMatMul", "matmul"), ("_MklNativeAvgPool", "pooling"), ("Pad", "copies"),
    ("BroadcastTo", "copies"), ("Mul", "elementwise"), ("ReluGrad", "elementwise"),
    ("_MklFusedBatchNormGradV3", "normalization"), ("FusedBatchNormEx", "normalization"),
    ("Sum", "other"),
])
def test_op_kinds(name, kind):
    assert breakdown.op_kind(name) == kind


def test_profiler_sees_the_ops_of_a_step():
    images = tf.random.uniform([2, 32, 32, 8])
    kernel = tf.random.uniform([3, 3, 8, 8])

    @tf.function
    def step(x):
        x = tf.nn.relu(tf.nn.conv2d(x, kernel, 1, "SAME"))
        x = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]])  # not fused: a pooling follows
        return tf.reduce_sum(tf.nn.avg_pool2d(x, 3, 2, "VALID"))

    step(images)
    times = breakdown.profile_op_times(lambda: step(images).numpy(), steps=2)
    kinds = {breakdown.op_kind(op) for op, ms in times.items() if ms > 0}
    assert {"convolution", "pooling", "copies"} <= kinds


def test_cli_breakdown_json():
    done = subprocess.run(
        [sys.executable, "-m", "bl_keras.benchmark", "--models", "resnet50,bl_resnet50",
         "--batch", "2", "--size", "32", "--steps", "2", "--warmup", "1", "--breakdown",
         "--json"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    records = json.loads(done.stdout.strip().splitlines()[-1])
    parts = [r["breakdown"] for r in records]
    assert [p["convolutions"] for p in parts] == [RESNET50_CONVS, BL_RESNET50_CONVS]
    for part in parts:
        assert part["batch"] == 2 and part["conv_alone_ms"] > 0
        assert part["conv_bound_images_per_sec"] == pytest.approx(2e3 / part["conv_alone_ms"])
        assert set(part["op_ms"]) == set(breakdown.KINDS) and part["op_ms"]["convolution"] > 0


@pytest.mark.parametrize("node, phase", [
    ("bl_resnet50_1/layer1/big/block0/conv1/convolution", "forward"),
    ("bl_resnet50/stem/conv1/convolution", "forward"),
    ("gradient_tape/bl_resnet50_1/layer1/big/block0/conv1/Conv2DBackpropInput", "backward"),
    ("replica_1/gradient_tape/bl_resnet50_1/stem/ReluGrad", "backward"),
    ("sgd/Mul_12", "update"), ("mul_53", "update"),
    ("bl_resnet50_small/stem/conv1/convolution", "update"),  # another model's scope
])
def test_training_ops_are_split_by_phase(node, phase):
    assert breakdown.phase_of(node, "bl_resnet50") == phase


def test_training_convolutions_are_timed_with_their_gradients():
    config = breakdown.ConvConfig(input_shape=(4, 32, 32, 32), kernel_shape=(3, 3, 32, 32),
                                  strides=(1, 1), padding="SAME", dilations=(1, 1),
                                  dtype="float32", depthwise=False)
    cache = {}
    forward = breakdown.time_convolutions([config], steps=5, cache=cache)[config]
    training = breakdown.time_convolutions([config], steps=5, cache=cache, training=True)[config]
    assert {(config, False), (config, True)} <= set(cache) and forward > 0 and training > 0
    # The timed training step returns a corner of the output and of both gradients.
    assert len(breakdown._conv_step(config, training=True)()) == 3


def test_cli_training_breakdown_json():
    done = subprocess.run(
        [sys.executable, "-m", "bl_keras.benchmark", "--models", "resnet50,bl_resnet50",
         "--mode", "train", "--batch", "2", "--size", "32", "--steps", "2", "--warmup", "1",
         "--breakdown", "--json"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    records = json.loads(done.stdout.strip().splitlines()[-1])
    parts = [r["breakdown"] for r in records]
    assert [p["convolutions"] for p in parts] == [RESNET50_CONVS, BL_RESNET50_CONVS]
    for part in parts:
        assert part["mode"] == "train" and part["conv_alone_ms"] > 0
        phases = part["phase_ms"]
        assert set(phases) == set(breakdown.PHASES)
        # The forward and backward passes convolve and normalise; the update (SGD with
        # momentum, weight decay) is elementwise work over every weight.
        for phase in ("forward", "backward"):
            assert phases[phase]["convolution"] > 0 and phases[phase]["normalization"] > 0
        assert phases["update"]["convolution"] == 0 and phases["update"]["elementwise"] > 0
        for kind in breakdown.KINDS:
            assert part["op_ms"][kind] == pytest.approx(
                sum(phases[phase][kind] for phase in breakdown.PHASES))


def test_cli_breakdown_refuses_xla():
    done = subprocess.run([sys.executable, "-m", "bl_keras.benchmark", "--breakdown",
                           "--jit_compile"], capture_output=True, text=True)
    assert done.returncode == 2
    assert "--breakdown profiles steps without --jit_compile" in done.stderr
