"""Detection inputs from tfds (`voc`, `coco`) in the format of KerasHub's detectors.

Each batch is (images, {"boxes": [batch, max_boxes, 4], "labels": [batch, max_boxes]}): images
normalised with the backbone's mean and std, resized keeping their aspect ratio to fit
`image_shape` and padded at the bottom and right (boxes need only a scale); boxes "yxyx" in
pixels; labels 0-based, -1 for padding (KerasHub's background class) and -2 for the objects the
benchmark ignores (VOC's "difficult", COCO's crowds: KerasHub's ignore class); "classes" holds
every object's class (ignored ones too, which the mAP evaluation needs), -1 for padding.
Training batches are shuffled and flipped left-right at random.
"""

import dataclasses

import tensorflow as tf

from bl_keras.data.sources import read_tfds, tfds_split_size
from bl_keras.models.registry import IMAGENET_MEAN, IMAGENET_STD

PADDING, IGNORED = -1, -2
# Per dataset family: the tfds feature that marks an ignored object.
IGNORE_FEATURES = {"voc": "is_difficult", "coco": "is_crowd"}


@dataclasses.dataclass
class DetectionData:
    dataset: tf.data.Dataset
    num_examples: int
    num_classes: int
    class_names: list


def _family(name):
    family = name.split("/")[0]
    if family not in IGNORE_FEATURES:
        raise ValueError(f"unknown detection dataset {name!r}: expected one of "
                         f"{', '.join(IGNORE_FEATURES)} (e.g. voc/2007, coco/2017)")
    return family


def letterbox(image, boxes, image_shape):
    """`image` [H, W, 3] resized to fit `image_shape` (keeping its aspect ratio), padded at the
    bottom and right; `boxes` (yxyx, relative to the image) in pixels of the result."""
    height, width = image_shape
    size = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = tf.minimum(height / size[0], width / size[1])
    new_size = tf.cast(tf.round(size * scale), tf.int32)
    image = tf.image.resize(image, new_size)
    image = tf.image.pad_to_bounding_box(image, 0, 0, height, width)
    return image, boxes * tf.concat([size, size], 0) * scale


def random_flip(image, boxes, labels, seed, index):
    """`image` and its `boxes` (yxyx pixels; rows labelled `PADDING` kept as they are) flipped
    left-right with probability 1/2, drawn statelessly from (`seed`, `index`): a different
    flip per image and epoch when `index` counts the stream's elements."""
    flip = tf.random.stateless_uniform(
        [], seed=tf.stack([tf.cast(seed, tf.int64), tf.cast(index, tf.int64)])) < 0.5
    width = tf.cast(tf.shape(image)[1], boxes.dtype)
    flipped = tf.stack([boxes[:, 0], width - boxes[:, 3], boxes[:, 2], width - boxes[:, 1]],
                       axis=1)
    flipped = tf.where(labels[:, None] == PADDING, boxes, flipped)
    image = tf.cond(flip, lambda: tf.image.flip_left_right(image), lambda: image)
    return image, tf.cond(flip, lambda: flipped, lambda: boxes)


def batched_stream(records, convert, *, batch_size, training, seed, shuffle_buffer,
                   input_context=None, skip_examples=0):
    """Batches of `convert(record, index)` over `records`: this input pipeline's shard of them;
    in training shuffled (seeded), repeated without end and started after `skip_examples`.
    `index` numbers the stream after shuffling and repeating and seeds each example's random
    flip, so a resumed run (skip_examples) sees what the uninterrupted one would have."""
    if input_context is not None and input_context.num_input_pipelines > 1:
        records = records.shard(input_context.num_input_pipelines,
                                input_context.input_pipeline_id)
    if training:
        records = records.shuffle(shuffle_buffer, seed=seed,
                                  reshuffle_each_iteration=True).repeat()
    records = records.enumerate().skip(skip_examples)
    dataset = records.map(lambda index, record: convert(record, index),
                          num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.batch(batch_size, drop_remainder=training).prefetch(tf.data.AUTOTUNE)
    if input_context is not None:  # already sharded: no auto-sharding on top
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
        dataset = dataset.with_options(options)
    return dataset


def parse_set(text):
    """("voc/2007", "test") from "voc/2007:test"."""
    name, _, split = text.partition(":")
    if not name or not split:
        raise ValueError(f"expected name:split (e.g. voc/2007:test), got {text!r}")
    return name, split


def _tfds_records(text, data_dir, training, seed):
    """(records of (image, boxes, classes, ignored), examples, label feature, family) of one
    "name:split" set."""
    import tensorflow_datasets as tfds

    name, split = parse_set(text)
    family = _family(name)
    builder = tfds.builder(name, data_dir=data_dir)
    records = read_tfds(builder, name, data_dir, split, shuffle_files=training,
                        read_config=tfds.ReadConfig(shuffle_seed=seed))
    num_examples = tfds_split_size(builder, split, lambda: records)

    def fields(example):
        objects = example["objects"]
        fields = objects["bbox"], objects["label"], objects[IGNORE_FEATURES[family]]
        # The objects all fields describe (they agree in real records; tfds' mock data draws
        # each sequence's length separately).
        count = tf.reduce_min([tf.shape(field)[0] for field in fields])
        bbox, labels, ignored = (field[:count] for field in fields)
        # Corners in order (real records are; mock data draws each coordinate on its own).
        bbox = tf.concat([tf.minimum(bbox[:, :2], bbox[:, 2:]),
                          tf.maximum(bbox[:, :2], bbox[:, 2:])], axis=1)
        return example["image"], bbox, tf.cast(labels, tf.int32), tf.cast(ignored, tf.bool)

    return records.map(fields), num_examples, builder.info.features["objects"]["label"], family


def tfds_detection(sets, data_dir, *, image_shape, batch_size, training, seed=0,
                   max_boxes=100, shuffle_buffer=1000, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                   input_context=None, skip_examples=0):
    """`DetectionData` of tfds detection sets prepared under `data_dir`: `sets` is one
    "name:split" or a list of them, read as one set (VOC07+12: ["voc/2007:train+validation",
    "voc/2012:train+validation"]); names voc/2007, voc/2012, coco/2017. `input_context` and
    `skip_examples` as in `batched_stream`."""
    sets = [sets] if isinstance(sets, str) else list(sets)
    if not sets:
        raise ValueError("no detection set given")
    parts = [_tfds_records(text, data_dir, training, seed) for text in sets]
    names = {tuple(feature.names) for _, _, feature, _ in parts}
    if len(names) != 1 or len({family for *_, family in parts}) != 1:
        raise ValueError(f"{', '.join(sets)} do not share their classes")
    records = parts[0][0]
    for part in parts[1:]:
        records = records.concatenate(part[0])
    num_examples = sum(part[1] for part in parts)
    labels_feature = parts[0][2]
    mean, std = tf.constant(mean), tf.constant(std)

    def convert(record, index):
        image, bbox, classes, ignored = record
        image, boxes = letterbox(tf.cast(image, tf.float32) / 255.0, bbox, image_shape)
        labels = tf.where(ignored, IGNORED, classes)
        if training:
            image, boxes = random_flip(image, boxes, labels, seed, index)
        pad = tf.maximum(max_boxes - tf.shape(labels)[0], 0)
        boxes = tf.pad(boxes[:max_boxes], [[0, pad], [0, 0]], constant_values=PADDING)
        labels, classes = (tf.pad(field[:max_boxes], [[0, pad]], constant_values=PADDING)
                           for field in (labels, classes))
        boxes.set_shape([max_boxes, 4])
        labels.set_shape([max_boxes])
        classes.set_shape([max_boxes])
        return (image - mean) / std, {"boxes": boxes, "labels": labels, "classes": classes}

    dataset = batched_stream(records, convert, batch_size=batch_size, training=training,
                             seed=seed, shuffle_buffer=shuffle_buffer,
                             input_context=input_context, skip_examples=skip_examples)
    return DetectionData(dataset, num_examples, labels_feature.num_classes,
                         list(labels_feature.names))
