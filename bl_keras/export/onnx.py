"""ONNX models of a classifier, through Keras' own ONNX export (tf2onnx for the TensorFlow
backend), for ONNX Runtime, OpenVINO and the other ONNX engines.

The ONNX model takes what the Keras model takes, preprocessed float32 NHWC images (ImageNet-
normalised, as `bl_keras.data.preprocessing` makes them), [batch, S, S, 3] with the batch
dynamic, and returns the model's output. Grouped convolutions (ResNeXt) are traced as plain
TF convolutions (`plain_grouped_convolutions`, as for SavedModels), which tf2onnx writes as ONNX
`Conv` with `group`, instead of Keras' XLA-compiled function, which it cannot convert; the bL
merges' 2x upsampling is traced as one resize op (`resize_operators`), an ONNX `Resize`.
"""

import keras
import numpy as np

from bl_keras.export.grouped_conv import plain_grouped_convolutions
from bl_keras.layers.resize import resize_operators


def export_onnx(model, path, image_size=224):
    """Write `model` as an ONNX file at `path` for [batch, image_size, image_size, 3] inputs
    (the batch left dynamic); returns the file's size in bytes."""
    import os

    try:
        import tf2onnx  # noqa: F401  (Keras' ONNX export needs it)
    except ImportError as err:
        raise ImportError("ONNX export needs tf2onnx: pip install \"bl_keras[onnx]\"") from err
    spec = keras.InputSpec(shape=(None, image_size, image_size, 3), dtype="float32")
    with plain_grouped_convolutions(), resize_operators():
        model(np.zeros((1, image_size, image_size, 3), "float32"))  # Keras exports called models
        model.export(path, format="onnx", input_signature=[spec], verbose=False)
    return os.path.getsize(path)


class OnnxClassifier:
    """An ONNX file run by ONNX Runtime on the CPU: `classifier(images)` -> the outputs."""

    def __init__(self, path, threads=None):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = onnxruntime.InferenceSession(path, options,
                                                    providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, images):
        return self.session.run(None, {self.input_name: np.asarray(images, np.float32)})[0]
