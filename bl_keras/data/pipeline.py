"""`build_dataset`: a batched ImageNet-style input pipeline for the trainer.

    info = build_dataset("imagefolder", "/data/imagenet", "train",
                         training=True, batch_size=per_pipeline_batch,
                         image_size=224, seed=0, input_context=ctx)
    steps_per_epoch = info.num_examples // global_batch_size
    model.fit(info.dataset, steps_per_epoch=steps_per_epoch, ...)
    print("corrupt images skipped:", info.num_skipped)

`info.dataset` yields ``(images, labels)``: float32 [B, S, S, 3] NHWC images,
ImageNet-normalised, and int32 [B] labels.  Grayscale images (IDX sets,
fashion_mnist, grayscale files) are replicated to 3 identical channels by
`preprocessing.decode_image`.  Training pipelines repeat
forever, shuffle and drop the last partial batch; evaluation pipelines make
one pass in file order and keep the remainder.

Corrupt images.  Each image is decoded inside a one-element dataset with
`ignore_errors`, so an undecodable (or unreadable) image turns into an
"invalid" flag instead of an error that would end training.  Invalid
elements are dropped before augmentation, their key (path, or shard[index])
is printed to stderr as ``bl_keras.data: skipping undecodable image: ...``
(printed regardless of TF_CPP_MIN_LOG_LEVEL), and `info.skipped`, an int64
`tf.Variable` on the CPU, is incremented when the decoder meets the image
(which, with prefetching, may be ahead of the batches consumed).  Each
undecodable file is printed and counted once per pipeline, however many
passes meet it (a training stream reads ahead past the end of an epoch, so
counting skip events would count one file twice in an epoch).  Build pipelines
outside `strategy.scope()` (the usual place for the dataset_fn of
`distribute_datasets_from_function`): inside it the counter would become a
mirrored variable on the accelerators, which tf.data cannot update.

Determinism.  With an integer `seed`, file order, shuffle buffers and
augmentation are all seeded and `tf.data.Options.deterministic` is set, so
two pipelines built with the same arguments yield identical batches.  The
augmentation seed of an element is ``fold_in((seed, pipeline_id), index)``
where `index` is its position in this pipeline's shuffled, repeated stream,
so every epoch and every worker draws fresh augmentations, and a run resumed
with `skip_examples` continues exactly as the uninterrupted run would.  ``seed=None`` draws a random seed and lets tf.data reorder
elements for speed.

Caching.  ``cache=True`` keeps the *decoded* images in memory after the
first pass; it suits small datasets such as the demo data, not ImageNet.
"""

import dataclasses
import os
import random
import sys

import tensorflow as tf

from bl_keras.data import preprocessing, sources

# Examples per (source, data_dir, split, options, classes) subset, counted once per process.
_SUBSET_SIZES = {}

SOURCES = {
    "imagefolder": sources.imagefolder_source,
    "tfrecord": sources.tfrecord_source,
    "tfds": sources.tfds_source,
    "idx": sources.idx_source,
    "decathlon": sources.decathlon_source,
}


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    dataset: tf.data.Dataset  # (images [B, S, S, 3] float32, labels [B] int32)
    num_examples: int  # files/records in the split, all pipelines together
    #                   (corrupt ones included: they are found while reading)
    num_classes: int
    skipped: tf.Variable  # int64: undecodable images dropped so far

    @property
    def num_skipped(self):
        return int(self.skipped.numpy())


def build_dataset(source_name, data_dir, split, *, training, batch_size,
                  image_size, seed, input_context=None, rotation_degrees=0.0,
                  color_jitter=0.4, min_crop_area=0.08,
                  eval_crop_fraction=preprocessing.EVAL_CROP_FRACTION,
                  manual_dir=None, tfds_name="imagenet2012", shuffle_buffer=10_000,
                  cache=False, label_offset=1, num_classes=1000,
                  skip_examples=0, classes=None, domain=None):
    """Builds the input pipeline of one worker; see the module docstring.

    Args:
      source_name: "imagefolder", "tfrecord", "tfds", "idx" or "decathlon".
      data_dir: ImageFolder root, TFRecord directory, tfds data_dir, the
        directory of the four IDX files, or the Visual Decathlon's root
        (holding annotations/ and data/).
      split: "train" or "val" ("validation" is accepted too; tfds and idx
        also take "test", the same split as "val"); "train+val" reads both.
      training: augment, shuffle, repeat and drop the remainder if True;
        otherwise centre-crop and make a single ordered pass.
      batch_size: size of the batches this pipeline yields.  Under
        `strategy.distribute_datasets_from_function` each batch feeds one
        replica, so pass the per-replica batch,
        ``input_context.get_per_replica_batch_size(global_batch)``; the caller
        computes it.
      image_size: side of the square network input.
      seed: int for a reproducible pipeline, or None.
      input_context: `tf.distribute.InputContext`; the data is sharded by its
        num_input_pipelines / input_pipeline_id.
      rotation_degrees: max random rotation in training (SE models use it).
      color_jitter: brightness/contrast/saturation jitter strength.
      min_crop_area: smallest random-resized crop (fraction of the area).
      eval_crop_fraction: evaluation resizes the shorter side to
        image_size / eval_crop_fraction, then centre crops (0.875: 256->224).
      manual_dir: tfds only; directory of the ImageNet tars to prepare from.
      tfds_name: tfds only; the dataset, e.g. "imagenet2012", "fashion_mnist".
      shuffle_buffer: element shuffle buffer (training only).
      cache: keep the decoded images in memory after the first pass; only
        for small datasets such as the demo data.
      label_offset, num_classes: tfrecord only (the records store neither).
      skip_examples: start after this many examples of this pipeline's
        stream, to resume a training run (step x per-replica batch x
        replicas fed by this pipeline).  Records, not decoded images, are
        counted, so each corrupt image before the resume point makes one
        image repeat after it (once per epoch if `cache` is set: none).
      classes: keep only these classes of the source (its label indices), relabelled 0, 1,
        ... in the order given (transfer learning: pretrain on some classes, transfer to the
        others). Counting the subset reads the split's labels once.
      domain: decathlon only; the domain read (aircraft, cifar100, ...).

    Returns:
      A `DatasetInfo`.
    """
    if source_name not in SOURCES:
        raise ValueError(f"Unknown source {source_name!r}; valid sources: "
                         f"{sorted(SOURCES)}")
    deterministic = seed is not None
    if seed is None:
        seed = random.SystemRandom().randrange(2**31)
    extra = {}
    if source_name == "tfrecord":
        extra = dict(label_offset=label_offset, num_classes=num_classes)
    elif source_name == "tfds":
        extra = dict(manual_dir=manual_dir, name=tfds_name)
    elif source_name == "decathlon":
        extra = dict(domain=domain)
    source = _source(source_name, data_dir, split, input_context=input_context,
                     shuffle=training, seed=seed, **extra)
    if classes is not None:
        count_key = (source_name, os.path.abspath(data_dir or ""), split,
                     tuple(sorted(extra.items())), tuple(int(c) for c in classes))
        if count_key not in _SUBSET_SIZES:  # once per process: every replica and rebuild reuses it
            whole_split = _source(source_name, data_dir, split, seed=seed, **extra)
            _SUBSET_SIZES[count_key] = _class_subset_size(whole_split, classes)
        source = _class_subset(source, classes, _SUBSET_SIZES[count_key])
    skipped, reported = _make_counter(), _make_key_set()

    def decode(index, record):
        item, label, key = record
        image, valid = _try_decode(source.load, item)
        valid = tf.cond(valid, lambda: valid,
                        lambda: _report_skip(key, skipped, reported))
        return index, (image, label), valid

    def decode_valid(indexed_records):  # -> (index, (image, label))
        return (indexed_records.map(decode, num_parallel_calls=tf.data.AUTOTUNE)
                .filter(lambda index, example, valid: valid)
                .map(lambda index, example, valid: (index, example)))

    records = source.records
    if cache:  # Decode once; later passes read the decoded images from memory.
        records = decode_valid(records.enumerate()).map(
            lambda index, example: example).cache()
    if training:
        records = records.shuffle(shuffle_buffer, seed=seed + 1,
                                  reshuffle_each_iteration=True).repeat()
    # `index` numbers the stream after shuffle + repeat and keys the
    # augmentation, so a resumed run (skip_examples) augments as the
    # uninterrupted one did.  Skipping happens before decoding: cheap.
    records = records.enumerate().skip(skip_examples)
    if not cache:  # Decode after shuffling, so the buffer holds small records.
        records = decode_valid(records)

    pipeline_id = input_context.input_pipeline_id if input_context else 0
    base_seed = tf.constant([seed, pipeline_id], tf.int64)

    def preprocess(index, example):
        image, label = example
        if training:
            element_seed = tf.random.experimental.stateless_fold_in(
                base_seed, index)
            image = preprocessing.train_preprocess(
                image, image_size, element_seed,
                rotation_degrees=rotation_degrees, color_jitter=color_jitter,
                min_crop_area=min_crop_area)
        else:
            image = preprocessing.eval_preprocess(image, image_size,
                                                  eval_crop_fraction)
        return preprocessing.normalize(image), label

    dataset = (records
               .map(preprocess, num_parallel_calls=tf.data.AUTOTUNE)
               .batch(batch_size, drop_remainder=training)
               .prefetch(tf.data.AUTOTUNE))

    options = tf.data.Options()
    options.deterministic = deterministic
    if input_context is not None:  # Already sharded: no auto-sharding on top.
        options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.OFF)
    return DatasetInfo(dataset.with_options(options), source.num_examples,
                       source.num_classes, skipped)


def _source(source_name, data_dir, split, **options):
    """The source of `split`; "train+val" joins splits (e.g. training on train and val, as the
    Visual Decathlon entries do)."""
    parts = [SOURCES[source_name](data_dir, name, **options) for name in split.split("+")]
    if len(parts) == 1:
        return parts[0]
    if len({part.num_classes for part in parts}) > 1:
        raise ValueError(f"the splits of {split!r} have different numbers of classes: "
                         f"{[part.num_classes for part in parts]}")
    records = parts[0].records
    for part in parts[1:]:
        records = records.concatenate(part.records)
    return sources.Source(records, parts[0].load, sum(p.num_examples for p in parts),
                          parts[0].num_classes)


def _checked_classes(classes, total):
    classes = [int(c) for c in classes]
    if not classes or len(set(classes)) != len(classes):
        raise ValueError(f"classes must be distinct class indices, got {classes}")
    if not all(0 <= c < total for c in classes):
        raise ValueError(f"classes {classes} outside the source's {total} classes "
                         f"(0..{total - 1})")
    return classes


def _class_subset_size(whole_split, classes):
    """How many examples of the unsharded `whole_split` belong to `classes` (reads its labels)."""
    total = whole_split.num_classes
    classes = _checked_classes(classes, total)
    counts = whole_split.records.map(lambda item, label, key: label).batch(4096).reduce(
        tf.zeros([total], tf.int64),
        lambda acc, labels: acc + tf.math.bincount(tf.cast(labels, tf.int32), minlength=total,
                                                   maxlength=total, dtype=tf.int64))
    return int(tf.reduce_sum(tf.gather(counts, classes)))


def _class_subset(source, classes, size):
    """`source` with only the examples of `classes` (relabelled 0..n-1 in their order), of
    which the whole split holds `size`."""
    total = source.num_classes
    classes = _checked_classes(classes, total)
    new_label = [-1] * total
    for index, c in enumerate(classes):
        new_label[c] = index
    new_label = tf.constant(new_label, tf.int32)
    records = (source.records
               .map(lambda item, label, key: (item, tf.gather(new_label, label), key))
               .filter(lambda item, label, key: label >= 0))
    return sources.Source(records, source.load, size, len(classes))


def _make_counter():
    # Lifted out of any tf.function and pinned to the CPU, where tf.data runs
    # the functions that increment it.
    with tf.init_scope(), tf.device("/CPU:0"):
        return tf.Variable(0, dtype=tf.int64, trainable=False,
                           name="skipped_images")


def _make_key_set():
    """The keys of the undecodable images reported so far (key -> 1)."""
    with tf.init_scope(), tf.device("/CPU:0"):
        return tf.lookup.experimental.MutableHashTable(tf.string, tf.int64, default_value=0)


def _try_decode(load, item):
    """Returns (image, True), or (empty image, False) if load/decode fails.

    tf ops cannot catch errors, but a dataset can: the decode runs in a
    one-element dataset whose errors `ignore_errors` drops, and a fallback
    element marks the failure.
    """
    decoded = tf.data.Dataset.from_tensors(item).map(
        lambda x: (preprocessing.decode_image(load(x)), True)).ignore_errors()
    failed = tf.data.Dataset.from_tensors((tf.zeros([0, 0, 3], tf.uint8), False))
    return decoded.concatenate(failed).take(1).get_single_element()


def _report_skip(key, counter, reported):
    """Print and count `key` the first time it fails; always returns False (drop it)."""
    def first_time():
        tf.print("bl_keras.data: skipping undecodable image:", key,
                 output_stream=sys.stderr)
        with tf.control_dependencies([reported.insert(key, tf.constant(1, tf.int64))]):
            return counter.assign_add(1)

    seen_before = reported.lookup(key) > 0
    update = tf.cond(seen_before, counter.read_value, first_time)
    with tf.control_dependencies([update]):
        return tf.constant(False)
