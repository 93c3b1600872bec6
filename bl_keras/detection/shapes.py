"""A generated detection set: scenes of 1-3 shapes (disc, square, triangle, cross) of random
size, colour and place on a noisy background, with their boxes (no download; deterministic).

Shapes are drawn with the classification demo set's masks (`bl_keras.data.demo`); boxes are the
tight extents of each mask, "yxyx" in pixels; objects do not overlap. Scene i of split s is drawn
from `np.random.default_rng((seed, s, i))`.
"""

import numpy as np
import tensorflow as tf

from bl_keras.data.demo import distinct_colours, shape_mask
from bl_keras.detection.data import PADDING, DetectionData, batched_stream, random_flip
from bl_keras.models.registry import IMAGENET_MEAN, IMAGENET_STD

CLASSES = ("disc", "square", "triangle", "cross")
MAX_OBJECTS = 3
SPLITS = {"train": 0, "val": 1}


def _overlaps(box, boxes):
    return any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3]
               for b in boxes)


def render_scene(rng, size):
    """(uint8 image [size, size, 3], boxes [n, 4] yxyx, labels [n]) of one scene."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    background = rng.uniform(50, 205, size=3)
    image = np.broadcast_to(background, (size, size, 3)).copy()
    boxes, labels = [], []
    for _ in range(rng.integers(1, MAX_OBJECTS + 1)):
        for _attempt in range(20):  # a place that does not overlap the others
            label = int(rng.integers(len(CLASSES)))
            radius = rng.uniform(0.08, 0.2) * size
            cy, cx = rng.uniform(radius, size - radius, size=2)
            mask = shape_mask(CLASSES[label], yy - cy, xx - cx, radius)
            rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
            box = (rows[0], cols[0], rows[-1] + 1, cols[-1] + 1)
            if not _overlaps(box, boxes):
                break
        else:
            continue
        _, colour = distinct_colours(rng)
        image[mask] = colour
        boxes.append(box)
        labels.append(label)
    image = image + rng.normal(0.0, 12.0, size=image.shape)
    return (np.clip(np.round(image), 0, 255).astype(np.uint8),
            np.array(boxes, np.float32).reshape(-1, 4), np.array(labels, np.int32))


def make_shapes(num_images, split="train", size=128, seed=0):
    """(images [n, size, size, 3] uint8, boxes [n, 3, 4], labels [n, 3]; padding -1)."""
    images = np.zeros((num_images, size, size, 3), np.uint8)
    boxes = np.full((num_images, MAX_OBJECTS, 4), PADDING, np.float32)
    labels = np.full((num_images, MAX_OBJECTS), PADDING, np.int32)
    for i in range(num_images):
        image, b, c = render_scene(np.random.default_rng((seed, SPLITS[split], i)), size)
        images[i], boxes[i, :len(c)], labels[i, :len(c)] = image, b, c
    return images, boxes, labels


def shapes_dataset(num_images, split, *, image_size, batch_size, training, seed=0,
                   mean=IMAGENET_MEAN, std=IMAGENET_STD, input_context=None, skip_examples=0):
    """`DetectionData` of `num_images` generated scenes, batched as `data.tfds_detection`'s
    (normalised images; training: shuffled, flipped left-right at random, repeated)."""
    images, boxes, labels = make_shapes(num_images, split, image_size, seed)
    records = tf.data.Dataset.from_tensor_slices((images, boxes, labels))
    mean, std = tf.constant(mean), tf.constant(std)

    def convert(record, index):
        image, box, label = record
        image = tf.cast(image, tf.float32) / 255.0
        if training:
            image, box = random_flip(image, box, label, seed, index)
        return (image - mean) / std, {"boxes": box, "labels": label, "classes": label}

    dataset = batched_stream(records, convert, batch_size=batch_size, training=training,
                             seed=seed, shuffle_buffer=num_images, input_context=input_context,
                             skip_examples=skip_examples)
    return DetectionData(dataset, num_images, len(CLASSES), list(CLASSES))
