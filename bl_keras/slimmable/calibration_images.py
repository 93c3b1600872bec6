"""The training images BatchNorm calibration runs on: a seeded sample of a train split,
augmented as in training.

    calibrate(model, "/data/imagenet", width=0.5, resolution=160)   # ~2,000 images

The images are a seeded random sample of the train split (the same images at every width and
resolution), not the first images of the file-ordered pipeline: an ImageFolder tree lists its
files class by class, so 2,000 of them would cover one or two ImageNet classes. They get the
training augmentation, seeded per image (see `CalibrationSample`). The statistics themselves
are computed by `bl_keras.slimmable.calibration`.
"""

import numpy as np
import tensorflow as tf

from bl_keras.data import SOURCES
from bl_keras.data.preprocessing import decode_image, normalize, train_preprocess
from bl_keras.slimmable.calibration import Calibrator

CALIBRATION_SEED = 0


def training_augmentation(min_crop_area=0.08, color_jitter=0.4, rotation_degrees=0.0):
    """The training preprocessing options calibration images get (the ImageNet recipe's by
    default; pass the run's own, e.g. the demo's gentler crops)."""
    return dict(min_crop_area=min_crop_area, color_jitter=color_jitter,
                rotation_degrees=rotation_degrees)


class CalibrationSample:
    """A fixed random sample of training records (file paths for ImageFolder: cheap to keep),
    decoded and preprocessed anew at each resolution.

    The images get the training augmentation (seeded per image, so every width and every run
    sees the same crops), as US-Net calibrates on its training loader: the statistics a network
    was trained to normalise with are those of augmented images (its moving averages are), and
    evaluation-preprocessed images can differ enough to matter (crops resample fine textures).
    """

    def __init__(self, items, load):
        self.items = items
        self.load = load

    def batches(self, resolution, batch_size, augmentation=None):
        """Batches of ImageNet-normalised [B, r, r, 3] images, in the sample's order; an
        undecodable image is skipped. `augmentation`: `training_augmentation()` options."""
        options = augmentation or training_augmentation()

        def preprocess(index, item):
            image = decode_image(self.load(item))
            seed = tf.stack([tf.constant(CALIBRATION_SEED, tf.int64), index])
            return normalize(train_preprocess(image, resolution, seed, **options))

        indices = tf.range(tf.shape(self.items, out_type=tf.int64)[0], dtype=tf.int64)
        return (tf.data.Dataset.from_tensor_slices((indices, self.items))
                .map(preprocess, num_parallel_calls=tf.data.AUTOTUNE)
                .ignore_errors()
                .batch(batch_size)
                .prefetch(tf.data.AUTOTUNE))


def calibration_sample(data_dir, num_images, source_name="imagefolder",
                       seed=CALIBRATION_SEED):
    """`num_images` records of the train split (plus a few spares for undecodable files),
    drawn at random with `seed` and kept, so every width and resolution calibrates on the same
    images.

    ImageFolder: a NumPy permutation of the file list, the same in every process. Other sources
    hold the encoded images, too many to list: the first records of the source's seeded
    shuffle, whose order also depends on TensorFlow's global seed."""
    if num_images <= 0:
        raise ValueError(f"calibration needs a positive image count, got {num_images}")
    count = num_images + num_images // 50 + 8
    if source_name == "imagefolder":
        source = SOURCES[source_name](data_dir, "train")
        paths = first_items(source.records, source.num_examples)
        order = np.random.default_rng(seed).permutation(source.num_examples)[:count]
        return CalibrationSample(tf.gather(paths, order), source.load)
    source = SOURCES[source_name](data_dir, "train", shuffle=True, seed=seed)
    return CalibrationSample(first_items(source.records, count), source.load)


def first_items(records, count):
    """The items (file path or encoded image) of the first `count` source records."""
    items = next(iter(records.map(lambda item, label, key: item).batch(count)), None)
    if items is None:
        raise ValueError("the train split has no images")
    return items


def calibrate(model, data_dir, width, resolution, num_images=2000, batch_size=64,
              source_name="imagefolder", augmentation=None):
    """Calibrates `model`'s BatchNorm statistics at (width, resolution) on a random sample of
    the train split, augmented as in training (overwriting them); returns the number of images
    used."""
    sample = calibration_sample(data_dir, num_images, source_name)
    return Calibrator(model)(sample.batches(resolution, batch_size, augmentation), width,
                             num_images=num_images)
