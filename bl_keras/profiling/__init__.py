"""Parameters and multiply-accumulates (the paper's "FLOPs") of any Keras model.

Counting rule (the paper's): multiply-accumulates of convolutions and dense layers
only; BatchNorm, activations, pooling, upsampling and additions are not counted. "Params" are the
trainable parameters (Keras `count_params()` also counts BatchNorm moving statistics).

MACs are read off the traced TensorFlow graph of one image, so any model counts the same way,
however its layers are written: every Conv2D/DepthwiseConv2dNative/MatMul op (also inside nested
functions, such as Keras' XLA-compiled grouped convolutions on CPU) adds
output elements x (kernel elements per output).
"""

import dataclasses

import numpy as np
import tensorflow as tf

_CONV_OPS = ("Conv2D", "Conv3D", "DepthwiseConv2dNative")
_MATMUL_OPS = ("MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3")


@dataclasses.dataclass(frozen=True)
class Profile:
    params: int
    macs: int
    input_shape: tuple

    @property
    def mparams(self):
        return self.params / 1e6

    @property
    def gmacs(self):
        return self.macs / 1e9


def count_params(model):
    """Trainable parameters (the paper's "Params")."""
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def op_macs(op):
    """Multiply-accumulates of one graph op (0 for ops the counting rule leaves out)."""
    if op.type in _CONV_OPS:
        out = op.outputs[0].shape
        kernel = op.inputs[1].shape
        if not (out.is_fully_defined() and kernel.is_fully_defined()):
            raise ValueError(f"Cannot count MACs of {op.name}: shapes not fully defined")
        if op.type == "DepthwiseConv2dNative":
            # kernel (kh, kw, in, multiplier): each output element sums kh * kw inputs.
            return int(np.prod(out)) * int(np.prod(kernel[:-2]))
        # kernel (kh, kw, in / groups, out): each output element sums kh * kw * in/groups inputs.
        return int(np.prod(out)) * int(np.prod(kernel[:-1]))
    if op.type in _MATMUL_OPS:
        a, out = op.inputs[0].shape, op.outputs[0].shape
        if not (a.is_fully_defined() and out.is_fully_defined()):
            raise ValueError(f"Cannot count MACs of {op.name}: shapes not fully defined")
        transpose_a = op.get_attr("transpose_a") if op.type == "MatMul" else op.get_attr("adj_x")
        inner = a[-2] if transpose_a else a[-1]
        return int(np.prod(out)) * int(inner)
    return 0


def graph_ops(graph):
    """Every op of `graph`, then those of the functions its call ops run (once per call)."""
    for op in graph.get_operations():
        yield op
        for attr in ("f", "then_branch", "else_branch", "body"):
            try:
                fn_name = op.get_attr(attr).name
            except (ValueError, AttributeError):
                continue
            function = graph._get_function(fn_name)  # noqa: SLF001 (no public accessor)
            if function is not None:
                yield from graph_ops(function.graph)


def inference_graph(model, input_shape, batch=1):
    """The traced graph of `model(x, training=False)` for a batch of `input_shape` images."""
    spec = tf.TensorSpec((batch, *input_shape), tf.float32)
    return tf.function(lambda x: model(x, training=False)).get_concrete_function(spec).graph


def count_macs(model, input_shape):
    """Multiply-accumulates of one forward pass (batch 1, inference) at `input_shape`.

    `input_shape` excludes the batch, e.g. (224, 224, 3).
    """
    return sum(op_macs(op) for op in graph_ops(inference_graph(model, tuple(input_shape))))


def image_shape(size, channels=3):
    return (size, size, channels)


def profile(model, input_shape):
    """Params and MACs of `model`; `input_shape` is (H, W, C) or an int image size."""
    if isinstance(input_shape, int):
        input_shape = image_shape(input_shape)
    return Profile(count_params(model), count_macs(model, tuple(input_shape)), tuple(input_shape))
