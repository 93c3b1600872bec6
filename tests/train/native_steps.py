"""Training steps of the speech models' pieces at 4 channels, one after another, in this process.

Run as `python -m tests.train.native_steps`. On some CPUs (seen: a 2-core AMD EPYC Zen 4 with
TensorFlow 2.21 and oneDNN on) a training step of a bL speech model whose little branches have 4
channels dies in native code ("double free or corruption", SIGABRT / SIGSEGV), with 8 channels it
trains. Each piece prints "start <name>" before and "done <name>" after its step, so the last
"start" line of a crashed run names the piece whose kernels crashed (`test_native_kernels.py`
reports it).
"""

import sys

import keras
import tensorflow as tf

from bl_keras.layers import BasicBlock, ConvBN, MergeAdd
from bl_keras.speech import models as speech_models

FREQ_PADDED = speech_models.FREQ_PADDED
FRAMES = 49


def _step(layer, inputs):
    """Two SGD steps of `layer` on `inputs` (training mode: batch statistics), compiled; the
    gradient reaches the inputs too, so layers without weights run their backward kernels."""
    layer(inputs)  # build the weights outside the compiled step
    optimizer = keras.optimizers.SGD(0.1, momentum=0.9, nesterov=True)
    variables = layer.trainable_variables
    sources = [tf.Variable(x) for x in tf.nest.flatten(inputs)]

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            outputs = layer(tf.nest.pack_sequence_as(inputs, sources), training=True)
            loss = tf.add_n([tf.reduce_mean(tf.square(o)) for o in tf.nest.flatten(outputs)])
        gradients = tape.gradient(loss, variables + sources)
        optimizer.apply_gradients(zip(gradients, variables + sources))
        return loss

    for _ in range(2):
        loss = step()
    if not bool(tf.math.is_finite(loss)):
        raise FloatingPointError("non-finite loss")


def _images(channels, height=16, width=FRAMES, batch=16):
    return tf.random.stateless_normal([batch, height, width, channels], seed=(1, channels))


def _merge():
    big = keras.Input((8, None, 4))
    little = keras.Input((16, None, 4))
    model = keras.Model([big, little], MergeAdd(crop_axes=(2,))([big, little]))
    return model, [_images(4, height=8, width=FRAMES - 4), _images(4, width=FRAMES - 2)]


def _tiny_model():
    model = speech_models.bl_resnet22(alpha=2, beta=3, widths=[8, 8, 16, 16], head_channels=16,
                                      num_states=5, input_shape=(64, FRAMES, 3))
    return model, _images(3, height=64)


# name -> () -> (layer, inputs)
PIECES = {
    "conv3x3_4ch": lambda: (ConvBN(4, 3), _images(4)),
    "conv3x3_4ch_freq_stride_time_valid": lambda: (
        ConvBN(4, 3, (2, 1), padding=FREQ_PADDED), _images(4)),
    "conv1x1_4_to_8ch": lambda: (ConvBN(8, 1, activation=None), _images(4)),
    "conv3x3_8_to_4ch_time_valid": lambda: (ConvBN(4, 3, padding=FREQ_PADDED), _images(8)),
    "basic_block_4ch_time_valid": lambda: (BasicBlock(4, padding=FREQ_PADDED), _images(4)),
    "basic_block_8_to_4ch_stride": lambda: (
        BasicBlock(4, (2, 1), padding=FREQ_PADDED), _images(8)),
    "merge_add_resize_crop_4ch": _merge,
    "bl_resnet22_little_4ch": _tiny_model,
}


def run(names):
    for name in names:
        print(f"start {name}", flush=True)
        _step(*PIECES[name]())
        print(f"done {name}", flush=True)


if __name__ == "__main__":
    run(sys.argv[1:] or list(PIECES))
