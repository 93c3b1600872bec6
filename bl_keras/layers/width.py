"""The width a layer runs at, and the channel counts of a slimmed layer: the US-Net rule.

A layer of `full` channels runs at width multiplier w with make_divisible(full * w) channels:
rounded to the nearest multiple of 8, never more than 10% below full * w (US-Net's
`make_divisible`; keras.applications' MobileNets round alike, with at least 8 channels instead
of 1). A `ratio` keeps a layer tied to
another's count: MobileNet v2's expansion convs have t x (the block input's count) channels.

`width` is a Python number (static channel counts: profiling, export, the fixed networks) or a
scalar tensor (one traced step that runs any width: training, calibration, the query table).
Layers read it from the thread-local scope `running_width`; outside any scope they run as fixed
layers.
"""

import contextlib
import numbers
import threading

import numpy as np

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
    import tensorflow as tf  # tensor widths are TensorFlow-only

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
    import tensorflow as tf

    width = tf.cast(width, tf.float32)
    value = tf.cast(full / ratio, tf.float32) * width
    rounded = tf.maximum(1.0, tf.floor((value + DIVISOR / 2) / DIVISOR) * DIVISOR)
    rounded = tf.where(rounded < 0.9 * value, rounded + DIVISOR, rounded)
    channels = tf.minimum(full, tf.cast(rounded, tf.int32) * ratio)
    return tf.where(width >= 1.0, full, channels)


def channels_of(x):
    """The channel count of NHWC/NC tensor `x`: static if known, else a tensor."""
    import tensorflow as tf

    static = x.shape[-1]
    return int(static) if static is not None else tf.shape(x)[-1]


# ---- the width a model runs at ------------------------------------------------------------------

_state = threading.local()


@contextlib.contextmanager
def _setting(attribute, value):
    previous = getattr(_state, attribute, None)
    setattr(_state, attribute, value)
    try:
        yield value
    finally:
        setattr(_state, attribute, previous)


def running_width(width):
    """Within this context, width-aware layers (`ConvBN`, `SqueezeExcite`, `Bottleneck`, the
    classifier head) run at `width`: a Python number in (0, 1] or a scalar tensor (checked in
    the graph). Functional models do not forward extra call arguments to their layers, so the
    width reaches them this way; under `tf.function` enter it inside the traced function.
    `None` is the fixed path."""
    if width is not None:
        width = check_width(width) if is_static(width) else assert_width(width)
    return _setting("width", width)


def current_width():
    """The width of the innermost `running_width`, or None (the fixed path)."""
    return getattr(_state, "width", None)


def is_full(width):
    """No width, or the static width 1.0: layers run their fixed (fused) code."""
    return width is None or (is_static(width) and float(width) == 1.0)


def require_full(layer):
    """Layers with no slimmed version fail clearly under a width below 1 (instead of computing
    with channel counts that do not fit their weights)."""
    if not is_full(current_width()):
        raise ValueError(f"{type(layer).__name__} {layer.name!r} cannot run at a width below 1 "
                         "(it has no slimmable version)")


def calibrating(weight):
    """Within this context, batch norm in training mode updates its moving statistics as
    `moving = (1 - weight) * moving + weight * batch` (weight = 1/k at the k-th batch gives the
    exact average over batches); `weight` may be a variable read when the step runs."""
    return _setting("calibration_weight", weight)


def calibration_weight():
    return getattr(_state, "calibration_weight", None)


# ---- channel plans: the network of one width, as a plain network --------------------------------

def recording(plan):
    """Within this context, layers run at a static width write the channel counts they use into
    `plan` (a dict keyed by layer path): see `narrowed_layers`."""
    return _setting("recording", plan)


def record(layer, **entry):
    plan = getattr(_state, "recording", None)
    if plan is not None:
        plan.setdefault(layer.path, {}).update(entry)


def building(plan):
    """Within this context, layers built take their channel counts (and a block its shortcut
    topology) from `plan`, as recorded by a run at a width: the layers of that width's
    sub-network."""
    return _setting("plan", plan)


def planned(layer):
    """The recorded entry of `layer` in the plan being built, or None."""
    plan = getattr(_state, "plan", None)
    return None if plan is None else plan.get(layer.path)
