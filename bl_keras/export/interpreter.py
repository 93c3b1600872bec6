"""Running TFLite models from Python: float in, float out, whatever their I/O types; latency.

Uses LiteRT's interpreter (`ai_edge_litert`) when installed, else `tf.lite.Interpreter`, which
TensorFlow 2.21 still ships but marks deprecated in favour of LiteRT.
"""

import time
import warnings

import numpy as np


def _interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    return Interpreter


class TFLiteClassifier:
    """One-input, one-output TFLite model: float32 arrays in and out.

    An int8 input is quantized with the model's own scale and zero point and an int8 output
    dequantized, so float and int8 models are called the same way.
    """

    def __init__(self, model_path=None, model_content=None, num_threads=2):
        with warnings.catch_warnings():  # tf.lite's deprecation notice, once per instance
            warnings.simplefilter("ignore")
            self.interpreter = _interpreter_class()(
                model_path=model_path, model_content=model_content, num_threads=num_threads)
        self.interpreter.allocate_tensors()
        (self._input,) = self.interpreter.get_input_details()
        (self._output,) = self.interpreter.get_output_details()

    @property
    def input_shape(self):
        return tuple(int(d) for d in self._input["shape"])

    @property
    def input_dtype(self):
        return np.dtype(self._input["dtype"])

    @property
    def output_dtype(self):
        return np.dtype(self._output["dtype"])

    def __call__(self, image):
        """float32 [1, S, S, 3] (or [S, S, 3]) -> float32 [1, classes]."""
        image = np.asarray(image, np.float32).reshape(self.input_shape)
        self.interpreter.set_tensor(self._input["index"], _quantize(image, self._input))
        self.interpreter.invoke()
        return _dequantize(self.interpreter.get_tensor(self._output["index"]), self._output)


def interleaved_latencies(classifiers, image, runs=30, warmup=3):
    """Seconds per call of each classifier in `classifiers` (a dict), `runs` calls each.

    The classifiers take turns, one call each per round, so load from other processes on a
    shared machine falls on all of them alike and their ratios stay fair.
    """
    for _ in range(warmup):
        for classifier in classifiers.values():
            classifier(image)
    times = {name: [] for name in classifiers}
    for _ in range(runs):
        for name, classifier in classifiers.items():
            start = time.perf_counter()
            classifier(image)
            times[name].append(time.perf_counter() - start)
    return times


def _quantize(x, detail):
    if detail["dtype"] == np.float32:
        return x
    scale, zero_point = detail["quantization"]
    info = np.iinfo(detail["dtype"])
    return np.clip(np.round(x / scale) + zero_point, info.min, info.max).astype(detail["dtype"])


def _dequantize(x, detail):
    if detail["dtype"] == np.float32:
        return x  # get_tensor returns a copy, safe to keep across calls
    scale, zero_point = detail["quantization"]
    return ((x.astype(np.float32) - zero_point) * scale).astype(np.float32)
