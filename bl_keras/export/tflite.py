"""TFLite flatbuffers of a classifier: float32, or int8 post-training quantized.

The TFLite model takes one already-preprocessed image, float32 [1, S, S, 3] (ImageNet-normalised,
as `bl_keras.data.preprocessing` makes it), and returns the Keras model's output [1, classes].

The model is traced at that fixed shape and written as a SavedModel first (Keras' own LiteRT
export does the same), which freezes the variables; with every size static, the bL merges'
`ops.shape` index arithmetic folds to constant GATHER indices and grouped convolutions become
grouped CONV_2D ops, so no layer needs a TFLite-specific path.

int8: weights and activations are int8 and every op must have an int8 kernel (the conversion
fails rather than silently leaving float ops). Input and output stay float32 by default: the
input is a normalised float image, so int8 input would push the quantisation parameters onto
every client, to save one QUANTIZE pass over 150k input values and one DEQUANTIZE of the
logits. `int8_io=True` gives int8 input and output for integer-only accelerators (Edge TPU,
microcontrollers); `TFLiteClassifier` quantizes for them.
"""

import tempfile

import keras
import tensorflow as tf

from bl_keras.export.grouped_conv import plain_grouped_convolutions

QUANTIZE_MODES = (None, "int8")


def convert_to_tflite(model, image_size=224, quantize=None, representative_images=None,
                      int8_io=False):
    """Returns the TFLite flatbuffer (bytes) of `model` at input [1, image_size, image_size, 3].

    Args:
        model: a Keras model taking NHWC float images.
        image_size: the fixed input side length S.
        quantize: None (float32) or "int8" (full-integer post-training quantization).
        representative_images: for int8, a sequence of preprocessed float32 [S, S, 3] images
            (about 100) that calibrates the activation ranges.
        int8_io: for int8, make the input and output int8 too (see the module docstring).
    """
    if quantize not in QUANTIZE_MODES:
        raise ValueError(f"quantize must be one of {QUANTIZE_MODES}, got {quantize!r}")
    if quantize and representative_images is None:
        raise ValueError("int8 quantization needs representative_images")
    with tempfile.TemporaryDirectory() as saved_model_dir:
        _write_fixed_shape_saved_model(model, saved_model_dir, image_size)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)
        if quantize == "int8":
            _configure_int8(converter, representative_images, int8_io)
        return converter.convert()


def export_tflite(model, path, **kwargs):
    """Writes `convert_to_tflite(model, **kwargs)` to `path`; returns its size in bytes."""
    flatbuffer = convert_to_tflite(model, **kwargs)
    with open(path, "wb") as f:
        f.write(flatbuffer)
    return len(flatbuffer)


def _write_fixed_shape_saved_model(model, directory, image_size):
    spec = tf.TensorSpec([1, image_size, image_size, 3], tf.float32, "image")
    with plain_grouped_convolutions():
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint("serve", lambda x: model(x, training=False), input_signature=[spec])
        archive.write_out(directory, verbose=False)


def _configure_int8(converter, images, int8_io):
    def representative_dataset():
        for image in images:
            yield [tf.cast(image, tf.float32)[tf.newaxis]]

    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative_dataset
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if int8_io:
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
