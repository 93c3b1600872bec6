"""Channel counts of a slimmed layer: the US-Net rule.

A layer of `full` channels runs at width multiplier w with make_divisible(full * w) channels:
rounded to the nearest multiple of 8, never more than 10% below full * w (US-Net's
`make_divisible`, also keras.applications' MobileNet rule). A `ratio` keeps a layer tied to
another's count: MobileNet v2's expansion convs have t x (the block input's count) channels.

`width` is a Python number (static channel counts: profiling, export, the fixed networks) or a
scalar tensor (one traced step that runs any width: training, calibration, the query table).
"""

import tensorflow as tf

DIVISOR = 8


def make_divisible(value, divisor=DIVISOR, min_value=1):
    """US-Net's rounding of a channel count `value` (a float) to a multiple of `divisor`."""
    new_value = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new_value < 0.9 * value:
        new_value += divisor
    return new_value


def check_width(width):
    """A Python width must lie in (0, 1]; tensors are checked when they run (see `active`)."""
    if isinstance(width, (int, float)) and not 0.0 < width <= 1.0:
        raise ValueError(f"width multiplier must be in (0, 1], got {width}")
    return width


def active(full, width, ratio=1):
    """Channels of a layer of `full` channels at `width`: an int, or an int32 scalar tensor."""
    if isinstance(width, (int, float)):
        check_width(width)
        if width == 1.0:
            return full
        return min(full, make_divisible(full / ratio * width) * ratio)
    value = tf.cast(full / ratio, tf.float32) * tf.cast(width, tf.float32)
    rounded = tf.maximum(1.0, tf.floor((value + DIVISOR / 2) / DIVISOR) * DIVISOR)
    rounded = tf.where(rounded < 0.9 * value, rounded + DIVISOR, rounded)
    return tf.minimum(full, tf.cast(rounded, tf.int32) * ratio)


def channels_of(x):
    """The channel count of NHWC/NC tensor `x`: static if known, else a tensor."""
    static = x.shape[-1]
    return int(static) if static is not None else tf.shape(x)[-1]
