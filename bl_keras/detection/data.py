"""Detection inputs from tfds (`voc`, `coco`) in the format of KerasHub's detectors.

Each batch is (images, {"boxes": [batch, max_boxes, 4], "labels": [batch, max_boxes]}): images
normalised with the backbone's mean and std, resized keeping their aspect ratio to fit
`image_shape` and padded at the bottom and right (boxes need only a scale); boxes "yxyx" in
pixels; labels 0-based, -1 for padding (KerasHub's background class) and -2 for the objects the
benchmark ignores (VOC's "difficult", COCO's crowds: KerasHub's ignore class). Training batches
are shuffled and flipped left-right at random.
"""

import dataclasses

import tensorflow as tf

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


def tfds_detection(name, split, data_dir, *, image_shape, batch_size, training, seed=0,
                   max_boxes=100, shuffle_buffer=1000, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """`DetectionData` of split `split` of tfds dataset `name` (voc/2007, voc/2012, coco/2017)
    prepared under `data_dir`."""
    import tensorflow_datasets as tfds

    family = _family(name)
    builder = tfds.builder(name, data_dir=data_dir)
    try:
        records = builder.as_dataset(split=split, shuffle_files=training,
                                     read_config=tfds.ReadConfig(shuffle_seed=seed))
    except AssertionError as error:  # tfds' "could not find data" error
        raise FileNotFoundError(f"tfds {name} is not prepared under {data_dir}; prepare it "
                                f"with `tfds build {name} --data_dir=...`") from error
    labels_feature = builder.info.features["objects"]["label"]
    if split in builder.info.splits:
        num_examples = builder.info.splits[split].num_examples
    else:  # no recorded split sizes (tfds.testing.mock_data): count
        num_examples = int(records.reduce(0, lambda n, _: n + 1))
    mean, std = tf.constant(mean), tf.constant(std)

    def convert(example, index):
        image = tf.cast(example["image"], tf.float32) / 255.0
        objects = example["objects"]
        fields = objects["bbox"], objects["label"], objects[IGNORE_FEATURES[family]]
        # The objects all fields describe (they agree in real records; tfds' mock data draws
        # each sequence's length separately).
        count = tf.reduce_min([tf.shape(field)[0] for field in fields])
        bbox, labels, ignored = (field[:count] for field in fields)
        image, boxes = letterbox(image, bbox, image_shape)
        labels = tf.where(ignored, IGNORED, tf.cast(labels, tf.int32))
        if training:
            image, boxes = random_flip(image, boxes, labels, seed, index)
        boxes, labels = boxes[:max_boxes], labels[:max_boxes]
        pad = max_boxes - tf.shape(labels)[0]
        boxes = tf.pad(boxes, [[0, pad], [0, 0]], constant_values=PADDING)
        labels = tf.pad(labels, [[0, pad]], constant_values=PADDING)
        boxes.set_shape([max_boxes, 4])
        labels.set_shape([max_boxes])
        return (image - mean) / std, {"boxes": boxes, "labels": labels}

    if training:
        records = records.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    records = tf.data.Dataset.zip((records, tf.data.Dataset.counter()))
    dataset = records.map(convert, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.batch(batch_size, drop_remainder=training).prefetch(tf.data.AUTOTUNE)
    return DetectionData(dataset, num_examples, labels_feature.num_classes,
                         list(labels_feature.names))
