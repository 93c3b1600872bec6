"""Image files on disk -> evaluation-preprocessed arrays (calibration and benchmark inputs).

A directory is either an ImageFolder tree (`<dir>/<class>/<image>`, any depth) or a flat folder
of images; both are walked recursively in sorted order.  Pixels go through the evaluation
preprocessing the trainer and the SavedModel signature use, so the int8 calibration sees what
the deployed model sees.
"""

import os
import sys

import numpy as np
import tensorflow as tf

from bl_keras.data.preprocessing import (EVAL_CROP_FRACTION, decode_image,
                                         eval_preprocess, normalize)
from bl_keras.data.sources import IMAGE_EXTENSIONS


def find_images(directory, limit=None):
    """Sorted image paths below `directory`; with `limit`, that many spread evenly over the list.

    Spreading (rather than taking the first `limit`) keeps every class of a sorted ImageFolder
    tree in a calibration set.
    """
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"{directory} is not a directory")
    paths = []
    for root, dirs, files in os.walk(directory, followlinks=True):
        dirs.sort()
        paths.extend(os.path.join(root, f) for f in sorted(files)
                     if f.lower().endswith(IMAGE_EXTENSIONS))
    if not paths:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) below {directory}")
    if limit is not None and limit < len(paths):
        picks = np.linspace(0, len(paths) - 1, limit).round().astype(int)
        paths = [paths[i] for i in picks]
    return paths


def class_of(path, directory):
    """The first directory below `directory` on the way to `path` (None for a flat folder)."""
    parts = os.path.relpath(path, directory).split(os.sep)
    return parts[0] if len(parts) > 1 else None


def preprocess_file(path, image_size, crop_fraction=EVAL_CROP_FRACTION):
    """float32 [S, S, 3] network input of one image file."""
    image = decode_image(tf.io.read_file(path))
    return normalize(eval_preprocess(image, image_size, crop_fraction)).numpy()


def load_images(paths, image_size, crop_fraction=EVAL_CROP_FRACTION):
    """float32 [N, S, S, 3] inputs and the paths they came from; undecodable files are skipped.

    A corrupt file in a calibration folder should not stop an export, so it is reported on
    stderr and left out, as the training pipeline does.
    """
    arrays, kept = [], []
    for path in paths:
        try:
            arrays.append(preprocess_file(path, image_size, crop_fraction))
            kept.append(path)
        except tf.errors.InvalidArgumentError as error:
            print(f"skipping undecodable image {path}: {error.message.splitlines()[0]}",
                  file=sys.stderr)
    if not arrays:
        raise ValueError("none of the images could be decoded")
    return np.stack(arrays), kept
