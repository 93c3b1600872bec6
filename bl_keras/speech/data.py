"""`build_speech_dataset`: batches of (49-frame context window, tied-state id) for every frame.

    info = build_speech_dataset("kaldi", "data/train/feats.scp",
                                alignments="exp/tri4_ali/pdf_ali.txt", num_states=9000,
                                training=True, batch_size=per_replica_batch, seed=0,
                                input_context=ctx, skip_examples=skip)
    info = build_speech_dataset("audio", "speech_demo/train", sample_rate=16000, ...)

`info.dataset` yields ``(windows, states)``: float32 [B, 64, 49, 3] (log-mel bins, frames,
static/delta/delta-delta; the models' input) and int32 [B] state ids of the centre frames.
Every frame of every usable utterance is one example; windows replicate the first / last frame
at utterance boundaries (`features.context_windows`). Features: `corpus.py` reads static log-mel
features (Kaldi) or computes them from WAV files (`features.log_mel`), then deltas, per-utterance
CMVN and edge padding are applied per utterance (`features.py`).

Training pipelines shuffle frames with `seed`, repeat forever and drop the last partial batch;
evaluation pipelines make one pass in corpus order (utterances as listed, frames in time order)
and keep the remainder. The same arguments give the same batches.

Sharding. With `input_context`, pipeline i of n takes utterances i, i + n, i + 2n, ... of the
corpus (feats.scp order, or sorted WAV paths): shards are disjoint for any seed.

Two ways to hold the data (`cache`):

- ``cache=True``: the shard's utterances are read once, at build time, and kept in memory as
  normalised, padded features (T + 48 rows of 64 x 3 float32 each, ~0.8 kB per frame). Bad
  utterances are found and reported then. Examples are frame indices, so training shuffles all
  frames of the shard each epoch (a full permutation) and `skip_examples` skips indices before
  any window is cut: exact and cheap. For sets that fit in memory (the demo, a few hundred hours
  need tens of GB).
- ``cache=False``: utterances are streamed from disk by a Python generator. Training visits them
  in a new seeded order each epoch, `chunk_utterances` at a time; the frames of a chunk are
  fully permuted (seeded by epoch and chunk), so memory holds one chunk. `skip_examples` is
  resolved from the label counts without reading anything: whole epochs and chunks are jumped
  over and only the chunk holding the resume point is read. Frames are counted from the labels,
  so (as with the image pipeline's corrupt files) each frame of a bad utterance before the
  resume point shifts the resumed stream by one frame.

Bad utterances (no alignment / label file, label count different from the feature frames,
unreadable or undecodable file, wrong sample rate) are printed to stderr once, as
``bl_keras.speech: skipping utterance <id>: <reason>``, counted in `info.skipped` (an int64
`tf.Variable` on the CPU; build outside `strategy.scope()`, as for images) and skipped. With
``cache=False`` a bad utterance is found when first read and passed over silently later.
"""

import dataclasses
import functools
import itertools
import random
import sys

import numpy as np
import tensorflow as tf

from bl_keras.speech import corpus as corpus_lib
from bl_keras.speech import features

SOURCES = ("kaldi", "audio")
_GATHER_BATCH = 256  # windows cut per gather in the streamed pipeline


@dataclasses.dataclass(frozen=True)
class SpeechDatasetInfo:
    dataset: tf.data.Dataset  # (windows [B, 64, 49, 3] float32, states [B] int32)
    num_examples: int  # frames of the labelled utterances, all pipelines together (counted
    #                   from the labels: bad utterances are found while reading)
    num_classes: int  # tied states
    skipped: tf.Variable  # int64: utterances skipped by this pipeline so far
    num_utterances: int  # utterances listed, all pipelines together

    @property
    def num_skipped(self):
        return int(self.skipped.numpy())


def speech_data_stats(source, path, *, alignments=None, num_states=None, sample_rate=16000):
    """(num_examples, num_classes, num_utterances) from the labels alone: no audio or features
    are read, so a trainer can size its epochs before building the pipelines."""
    data = corpus_lib.make_corpus(source, path, alignments=alignments, num_states=num_states,
                                  sample_rate=sample_rate)
    return data.num_frames, data.num_states, len(data.utterances)


def build_speech_dataset(source, path, *, training, batch_size, seed, alignments=None,
                         num_states=None, sample_rate=16000, input_context=None,
                         skip_examples=0, cache=False, chunk_utterances=256,
                         context=features.CONTEXT):
    """Builds the input pipeline of one worker; see the module docstring.

    Args:
      source: "kaldi" (path = feats.scp, with `alignments`) or "audio" (path = directory or
        list file of WAV files with label files beside them).
      training: shuffle, repeat and drop the remainder if True; else one ordered pass.
      batch_size: batch of this pipeline (the per-replica batch under
        `distribute_datasets_from_function`).
      seed: int for a reproducible pipeline, or None (a random seed).
      alignments: kaldi: text file of `utt_id state_1 ... state_T` lines.
      num_states: number of tied states; required for kaldi, the largest label + 1 for audio
        when None.
      sample_rate: audio: the rate features are computed at (files at another rate are
        skipped; 8000 for telephone speech).
      input_context: `tf.distribute.InputContext`; utterances are sharded by its
        num_input_pipelines / input_pipeline_id.
      skip_examples: start after this many examples of this pipeline's stream (resuming a
        run: step x per-replica batch x replicas fed by this pipeline).
      cache: keep the shard's features in memory (see the module docstring).
      chunk_utterances: cache=False: utterances read together (in training, their frames are
        shuffled together); memory holds one chunk's features.
      context: frames per window (49 for the paper's models).

    Returns:
      A `SpeechDatasetInfo`.
    """
    if source not in SOURCES:
        raise ValueError(f"Unknown speech source {source!r}; valid sources: {SOURCES}")
    deterministic = seed is not None
    if seed is None:
        seed = random.SystemRandom().randrange(2**31)
    data = corpus_lib.make_corpus(source, path, alignments=alignments, num_states=num_states,
                                  sample_rate=sample_rate)
    count = input_context.num_input_pipelines if input_context else 1
    pipeline_id = input_context.input_pipeline_id if input_context else 0
    shard = data.shard(pipeline_id, count)
    reader = _Reader(data, context)

    if cache:
        dataset = _cached_frames(reader, shard, training, batch_size, seed, skip_examples)
    else:
        stream = _ChunkStream(reader, shard, training, seed, pipeline_id, chunk_utterances,
                              skip_examples)
        dataset = _streamed_frames(stream, batch_size, training, context)

    options = tf.data.Options()
    options.deterministic = deterministic
    if input_context is not None:  # Already sharded: no auto-sharding on top.
        options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.OFF)
    return SpeechDatasetInfo(dataset.prefetch(tf.data.AUTOTUNE).with_options(options),
                             data.num_frames, data.num_states, reader.skipped,
                             len(data.utterances))


class _Reader:
    """Reads one utterance into model-ready padded features; reports bad ones once."""

    def __init__(self, data, context):
        self.data = data
        self.context = context
        with tf.init_scope(), tf.device("/CPU:0"):  # where tf.data and the generator run
            self.skipped = tf.Variable(0, dtype=tf.int64, trainable=False,
                                       name="skipped_utterances")
        self._bad = set()
        self._normalise_and_pad = _normalise_and_pad_function(context)

    def read(self, utt):
        """(padded features (T + context - 1, 64, 3) float32, labels (T,)) or None."""
        if utt.key in self._bad:
            return None
        statics, reason = self.data.load_statics(utt)
        if reason is not None:
            self._bad.add(utt.key)
            print(f"bl_keras.speech: skipping utterance {utt.key}: {reason}", file=sys.stderr,
                  flush=True)
            self.skipped.assign_add(1)
            return None
        return self._normalise_and_pad(statics).numpy(), utt.labels


@functools.lru_cache(maxsize=None)
def _normalise_and_pad_function(context):
    """statics (T, 64) -> deltas, CMVN, edge padding: (T + context - 1, 64, 3); one traced
    function per context width, shared by every pipeline."""

    @tf.function(input_signature=[tf.TensorSpec([None, features.NUM_MEL_BINS], tf.float32)])
    def normalise_and_pad(statics):
        return features.pad_context(features.cmvn(features.deltas(statics)), context)

    return normalise_and_pad


def _cached_frames(reader, shard, training, batch_size, seed, skip_examples):
    """All frames of the shard in memory; examples are frame indices (see module docstring)."""
    blocks, rows, labels = [], [], []
    offset = 0
    for utt in shard:
        read = reader.read(utt)
        if read is None:
            continue
        padded, utt_labels = read
        blocks.append(padded)
        rows.append(offset + np.arange(len(utt_labels)))  # window of frame t starts at row t
        labels.append(utt_labels)
        offset += len(padded)
    if not blocks:
        raise ValueError("No usable utterance in this pipeline's shard (see the messages above)")
    padded = tf.constant(np.concatenate(blocks))
    rows = tf.constant(np.concatenate(rows), tf.int32)
    labels = tf.constant(np.concatenate(labels), tf.int32)
    num_frames = int(labels.shape[0])
    width = reader.context

    indices = tf.data.Dataset.range(num_frames)
    if training:  # Indices are small: a full per-epoch permutation of the shard's frames.
        indices = indices.shuffle(num_frames, seed=seed, reshuffle_each_iteration=True).repeat()
    indices = indices.skip(skip_examples).batch(batch_size, drop_remainder=training)
    return indices.map(lambda i: (features.window_at(padded, tf.gather(rows, i), width),
                                  tf.gather(labels, i)),
                       num_parallel_calls=tf.data.AUTOTUNE)


class _ChunkStream:
    """The streamed order: epochs of seeded utterance permutations cut into chunks, frames
    permuted within a chunk. Positions are counted with the label lengths, so a resume point
    is found without reading any audio or features."""

    def __init__(self, reader, shard, training, seed, pipeline_id, chunk_utterances,
                 skip_examples):
        self.reader = reader
        self.shard = shard
        self.training = training
        self.seed = seed
        self.pipeline_id = pipeline_id
        self.chunk = max(1, int(chunk_utterances))
        self.frames = np.array([0 if u.labels is None else len(u.labels) for u in shard])
        self.skip_examples = int(skip_examples)
        if not self.frames.sum():
            raise ValueError("No labelled frames in this pipeline's shard")

    def _order(self, epoch):
        if not self.training:
            return np.arange(len(self.shard))
        return np.random.default_rng((self.seed, self.pipeline_id, epoch)).permutation(
            len(self.shard))

    def _start(self):
        """(epoch, first chunk, frames to drop in it) of the resume point."""
        per_epoch = int(self.frames.sum())
        epoch, remainder = divmod(self.skip_examples, per_epoch)
        if not self.training and epoch:
            return epoch, 0, 0  # past the single evaluation pass: nothing left
        order = self._order(epoch)
        chunk_frames = [self.frames[order[i:i + self.chunk]].sum()
                        for i in range(0, len(order), self.chunk)]
        before = np.concatenate([[0], np.cumsum(chunk_frames)])
        first = int(np.searchsorted(before, remainder, side="right") - 1)
        return epoch, first, int(remainder - before[first])

    def __call__(self):
        """Yields (padded features of the chunk, window start rows, labels) per chunk."""
        epoch, first, drop = self._start()
        epochs = itertools.count(epoch) if self.training else range(epoch, 1)
        for e in epochs:
            order = self._order(e)
            usable = False
            for c, start in enumerate(range(0, len(order), self.chunk)):
                if e == epoch and c < first:
                    usable = True  # jumped over, not read: assume usable
                    continue
                chunk = self._read_chunk(order[start:start + self.chunk])
                if chunk is None:
                    continue
                usable = True
                padded, rows, labels = chunk
                if self.training:
                    permutation = np.random.default_rng(
                        (self.seed, self.pipeline_id, e, c)).permutation(len(rows))
                    rows, labels = rows[permutation], labels[permutation]
                if e == epoch and c == first:
                    rows, labels = rows[drop:], labels[drop:]
                yield padded, rows, labels
            if not usable:  # Training would wait forever for a first example.
                raise ValueError("No usable utterance in this pipeline's shard "
                                 "(see the messages above)")

    def _read_chunk(self, utterance_ids):
        blocks, rows, labels = [], [], []
        offset = 0
        for i in utterance_ids:
            read = self.reader.read(self.shard[i])
            if read is None:
                continue
            padded, utt_labels = read
            blocks.append(padded)
            rows.append(offset + np.arange(len(utt_labels), dtype=np.int32))
            labels.append(utt_labels)
            offset += len(padded)
        if not blocks:
            return None
        return np.concatenate(blocks), np.concatenate(rows), np.concatenate(labels)


def _streamed_frames(stream, batch_size, training, width):
    chunks = tf.data.Dataset.from_generator(stream, output_signature=(
        tf.TensorSpec([None, features.NUM_MEL_BINS, 3], tf.float32),
        tf.TensorSpec([None], tf.int32), tf.TensorSpec([None], tf.int32)))

    def frames_of(padded, rows, labels):
        # Windows are cut a few hundred at a time (one gather each), then unbatched.
        return (tf.data.Dataset.from_tensor_slices((rows, labels)).batch(_GATHER_BATCH)
                .map(lambda r, l: (features.window_at(padded, r, width), l)).unbatch())

    return chunks.flat_map(frames_of).batch(batch_size, drop_remainder=training)
