"""Channel counts of a slimmed layer: the US-Net rule.

A layer of `full` channels runs at width multiplier w with make_divisible(full * w) channels:
rounded to the nearest multiple of 8, never more than 10% below full * w (US-Net's
`make_divisible`; keras.applications' MobileNets round alike, with at least 8 channels instead
of 1). A `ratio` keeps a layer tied to
another's count: MobileNet v2's expansion convs have t x (the block input's count) channels.

`width` is a Python number (static channel counts: profiling, export, the fixed networks) or a
scalar tensor (one traced step that runs any width: training, calibration, the query table).
"""

import numbers

import numpy as np
import tensorflow as tf

DIVISOR = 8


def make_divisible(value, divisor=DIVISOR, min_value=1):
    """US-Net's rounding of a channel count `value` (a float) to a multiple of `divisor`."""
    new_value = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new_value < 0.9 * value:
        new_value += divisor
    return new_value


def is_static(width):
    """A Python or NumPy number (static channel counts), not a tensor."""
    return isinstance(width, numbers.Real) and not isinstance(width, bool)


def check_width(width):
    """A static width must lie in (0, 1] (returned as a float); tensors are checked in the
    graph by `assert_width`."""
    if is_static(width):
        width = float(width)
        if not 0.0 < width <= 1.0:
            raise ValueError(f"width multiplier must be in (0, 1], got {width}")
    return width


def assert_width(width):
    """`width` as a float32 tensor that fails at run time unless it lies in (0, 1]."""
    width = tf.convert_to_tensor(width, tf.float32)
    message = "width multiplier must be in (0, 1]"
    with tf.control_dependencies([
            tf.debugging.assert_greater(width, 0.0, message=message),
            tf.debugging.assert_less_equal(width, 1.0, message=message)]):
        return tf.identity(width)


def active(full, width, ratio=1):
    """Channels of a layer of `full` channels at `width`: an int, or an int32 scalar tensor.

    Static and tensor widths compute make_divisible(full / ratio * width) * ratio in the same
    float32 arithmetic, so a traced step and a static profile agree even where full * width
    lands exactly on a rounding tie; width 1.0 keeps `full` in both.
    """
    if is_static(width):
        width = check_width(width)
        if width == 1.0:
            return full
        value = np.float32(full / ratio) * np.float32(width)
        rounded = max(np.float32(1.0), np.floor((value + np.float32(DIVISOR / 2)) /
                                                np.float32(DIVISOR)) * np.float32(DIVISOR))
        if rounded < np.float32(0.9) * value:
            rounded += DIVISOR
        return min(full, int(rounded) * ratio)
    width = tf.cast(width, tf.float32)
    value = tf.cast(full / ratio, tf.float32) * width
    rounded = tf.maximum(1.0, tf.floor((value + DIVISOR / 2) / DIVISOR) * DIVISOR)
    rounded = tf.where(rounded < 0.9 * value, rounded + DIVISOR, rounded)
    channels = tf.minimum(full, tf.cast(rounded, tf.int32) * ratio)
    return tf.where(width >= 1.0, full, channels)


def channels_of(x):
    """The channel count of NHWC/NC tensor `x`: static if known, else a tensor."""
    static = x.shape[-1]
    return int(static) if static is not None else tf.shape(x)[-1]
