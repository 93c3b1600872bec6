"""A TF Serving SavedModel of a classifier: encoded images in, top-k classes out.

Signatures (loading needs TensorFlow only, no bl_keras):

- `serving_default(images)`: `images` is a 1-D string tensor of encoded images (JPEG, PNG, BMP,
  GIF, WebP; any sizes, mixed in one batch). Each is decoded to RGB, its shorter side resized
  to round(image_size / crop_fraction) (bilinear, antialiased as PIL), centre-cropped to
  image_size and normalised with the ImageNet mean/std: the evaluation preprocessing of
  `bl_keras.data.preprocessing`, traced into the graph. Returns `classes` (int32 [B, k]),
  `labels` (string [B, k]) and `probabilities` (float32 [B, k]), best first.
- `predict_images(images)`: float32 [B, H, W, 3] already-preprocessed images (any H, W the model
  accepts). Returns `probabilities` and `logits`, float32 [B, classes].

Undecodable bytes fail the whole request with InvalidArgumentError; the model keeps serving.
"""

import keras
import numpy as np
import tensorflow as tf

from bl_keras.data.preprocessing import (EVAL_CROP_FRACTION, decode_image,
                                         eval_preprocess, normalize)
from bl_keras.export.grouped_conv import plain_grouped_convolutions
from bl_keras.export.head import class_names, classifier_of, outputs_logits
from bl_keras.layers.inference import folded_inference

SERVING_SIGNATURE = "serving_default"
ARRAY_SIGNATURE = "predict_images"
INPUT_NAME = "images"
# log(p) of a softmax model: p == 0 after float32 underflow would give -inf.
_TINY = float(np.finfo(np.float32).tiny)


def export_saved_model(model, output_dir, labels=None, top_k=5, image_size=224,
                       crop_fraction=EVAL_CROP_FRACTION, outputs="auto"):
    """Writes `model` as a SavedModel with the two signatures above.

    Args:
        model: a Keras classifier taking ImageNet-normalised NHWC float images.
        output_dir: the SavedModel directory (a TF Serving version directory, e.g. `.../1`).
        labels: path of a text file with one class name per line, or None (names = ids).
        top_k: classes returned per image by `serving_default` (at most the class count).
        image_size, crop_fraction: the evaluation crop (224 and 0.875 = resize 256, crop 224).
        outputs: "auto" (read the last layer), "logits" or "probabilities": what the model
            returns; softmax is applied in the graph only to logits.
    """
    num_classes = int(classifier_of(model).outputs[0].shape[-1])
    logits_model = outputs_logits(model, outputs)
    names = class_names(num_classes, labels)
    k = min(int(top_k), num_classes)
    _check_input_size(model, image_size)

    def scores(images):
        out = tf.cast(model(images, training=False), tf.float32)
        if logits_model:
            return {"probabilities": tf.nn.softmax(out), "logits": out}
        # log-probabilities are logits too: softmax(log p) = p.
        return {"probabilities": out, "logits": tf.math.log(tf.maximum(out, _TINY))}

    def preprocess(encoded):
        image = eval_preprocess(decode_image(encoded), image_size, crop_fraction)
        return normalize(image)

    def serve(images):
        batch = tf.map_fn(preprocess, images,
                          fn_output_signature=tf.TensorSpec([image_size, image_size, 3],
                                                            tf.float32))
        top = tf.math.top_k(scores(batch)["probabilities"], k)
        return {
            "classes": top.indices,
            "labels": tf.gather(tf.constant(names), top.indices),
            "probabilities": top.values,
        }

    array_shape = [None, *classifier_of(model).inputs[0].shape[1:]]
    # Served weights never change: BatchNorm is folded into them once, at export (bf16 kernels
    # under a mixed policy), not at every request. The archive then holds what serving reads
    # (folded kernels and biases, the classifier), not the training-time weights.
    with plain_grouped_convolutions(), folded_inference(model) as folded:
        archive = keras.export.ExportArchive()
        archive.track(folded)
        archive.add_endpoint(SERVING_SIGNATURE, serve,
                             input_signature=[tf.TensorSpec([None], tf.string, INPUT_NAME)])
        archive.add_endpoint(ARRAY_SIGNATURE, scores,
                             input_signature=[tf.TensorSpec(array_shape, tf.float32, INPUT_NAME)])
        # Serving needs no gradients; saving them would store the XLA-compiled backward pass
        # of grouped convolutions (bl_keras/layers/fused.py), which TF Serving cannot run.
        archive.write_out(str(output_dir), verbose=False, options=tf.saved_model.SaveOptions(
            experimental_custom_gradients=False))
    return str(output_dir)


def _check_input_size(model, image_size):
    height, width = classifier_of(model).inputs[0].shape[1:3]
    for size in (height, width):
        if size is not None and size != image_size:
            raise ValueError(f"the model takes {height}x{width} images, not {image_size}")
