"""Run as a script by test_saved_model.py: loads an exported SavedModel with TensorFlow alone.

    python load_without_bl_keras.py SAVED_MODEL_DIR IMAGE_FILE...

Prints one JSON object: the serving_default outputs for the image files (one batch), what a
request with one undecodable image raised, the outputs of a good request sent after it, and
whether anything imported bl_keras.
"""

import json
import sys

import tensorflow as tf


def outputs(result):
    return {
        "classes": result["classes"].numpy().tolist(),
        "labels": [[s.decode() for s in row] for row in result["labels"].numpy()],
        "probabilities": result["probabilities"].numpy().tolist(),
    }


def main(saved_model_dir, paths):
    serve = tf.saved_model.load(saved_model_dir).signatures["serving_default"]
    images = []
    for path in paths:
        with open(path, "rb") as f:
            images.append(f.read())
    first = outputs(serve(images=tf.constant(images)))
    try:
        serve(images=tf.constant([images[0], b"\xff\xd8 not really a JPEG"]))
        corrupt_error = None
    except tf.errors.InvalidArgumentError as error:
        corrupt_error = type(error).__name__
    after = outputs(serve(images=tf.constant(images)))
    print(json.dumps({
        "first": first,
        "corrupt_error": corrupt_error,
        "after_corrupt": after,
        "bl_keras_imported": "bl_keras" in sys.modules,
    }))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
