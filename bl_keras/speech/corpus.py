"""Where the utterances come from: Kaldi feats.scp + alignments, or WAV files + label files.

A `Corpus` is the list of utterances of one data directory, with their per-frame labels read up
front (small: one int per 10 ms), and `load_statics(utt)` that reads one utterance's static
log-mel features, (T, 64) float32, or says why it cannot.

Kaldi layout (source "kaldi"):
    feats.scp      `utt_id ark_path:offset` lines (any scp kaldiio reads), features as stored:
                   (frames, 64) log-mel filterbanks (`compute-fbank-feats --num-mel-bins=64`);
                   deltas and CMVN are computed here, so store them without.
    alignments     text lines `utt_id s_1 s_2 ... s_T`, one tied-state (pdf) id per frame, e.g.
                   `ali-to-pdf final.mdl "ark:gunzip -c ali.*.gz|" ark,t:- > pdf_ali.txt`
                   (ark,t output of ali-to-pdf / copy-int-vector).

Audio layout (source "audio"):
    a directory searched recursively for `*.wav` (16-bit PCM at the configured sample rate;
    the first channel is used), or a list file with one WAV path per line (relative paths are
    taken from the list file's directory); beside each `<utt>.wav` a label file `<utt>.labels`
    or `<utt>.txt` (whitespace-separated ints, one per frame) or `<utt>.npy` (int array), with
    one label per feature frame (`features.num_frames`: 1 + (samples - 25 ms) // 10 ms).
    Utterance ids are the WAV paths relative to the root, without `.wav`.

Problems of one utterance (no labels, label count != feature frames, unreadable or undecodable
file, wrong sample rate) are returned as a reason string by `load_statics`; the pipeline reports
and skips them. Problems of the whole data set (no files, wrong feature dimension, labels outside
[0, num_states)) raise.
"""

import dataclasses
import functools
import os

import numpy as np
import tensorflow as tf

from bl_keras.speech import features

LABEL_SUFFIXES = (".labels", ".txt", ".npy")


@dataclasses.dataclass(frozen=True)
class Utterance:
    key: str  # utterance id
    item: str  # kaldi: the scp's rxspecifier; audio: the WAV path
    labels: np.ndarray = None  # int32 (T,), or None when the utterance has none


class Corpus:
    """Utterances of one data set and how to read their static features."""

    source = None

    def __init__(self, utterances, num_states):
        self.utterances = list(utterances)
        self.num_states = int(num_states)
        for utt in self.utterances:
            _check_label_range(utt, self.num_states)

    @property
    def num_frames(self):
        """Frames of all labelled utterances, counted from the labels."""
        return sum(len(u.labels) for u in self.utterances if u.labels is not None)

    def shard(self, index, count):
        """Utterances of input pipeline `index` of `count` (by position: disjoint, stable)."""
        return self.utterances[index::count]

    def load_statics(self, utt):
        """(statics (T, 64) float32, None) or (None, reason) for one utterance."""
        if utt.labels is None:
            return None, self.missing_labels_reason
        statics, reason = self._read(utt)
        if reason is not None:
            return None, reason
        if len(statics) != len(utt.labels):
            return None, f"{len(statics)} feature frames but {len(utt.labels)} labels"
        if len(statics) == 0:
            return None, "no frames"
        return statics, None

    missing_labels_reason = "no labels"

    def _read(self, utt):
        raise NotImplementedError


class KaldiCorpus(Corpus):
    """feats.scp read with kaldiio; labels from an alignment text file."""

    source = "kaldi"
    missing_labels_reason = "no alignment"

    def __init__(self, feats_scp, alignments, num_states):
        _kaldiio()  # fail before reading anything if it is missing
        if num_states is None:
            raise ValueError("kaldi data needs num_states (the number of tied states, "
                             "e.g. `tree-info tree | grep num-pdfs`)")
        labels = read_alignments(alignments)
        super().__init__([Utterance(key, rxspec, labels.get(key))
                          for key, rxspec in read_scp(feats_scp)], num_states)
        if not self.utterances:
            raise FileNotFoundError(f"No utterances in {feats_scp}")

    def _read(self, utt):
        return read_kaldi_statics(utt.key, utt.item)


class AudioCorpus(Corpus):
    """WAV files and per-frame label files; log-mel features computed here."""

    source = "audio"

    def __init__(self, path, num_states=None, sample_rate=16000):
        self.sample_rate = int(sample_rate)
        utterances = [Utterance(key, wav, _read_labels(wav)) for key, wav in list_wavs(path)]
        if not utterances:
            raise FileNotFoundError(f"No .wav files found in {path}")
        if num_states is None:  # Labels of every utterance are read anyway: take the largest.
            num_states = 1 + max((int(u.labels.max()) for u in utterances
                                  if u.labels is not None and len(u.labels)), default=0)
        super().__init__(utterances, num_states)
        self._log_mel = wav_log_mel_function(self.sample_rate)

    def _read(self, utt):
        return read_wav_statics(utt.item, self.sample_rate, self._log_mel)


def read_kaldi_statics(key, rxspecifier):
    """(features (T, 64) float32, None) or (None, reason) for one feats.scp entry."""
    load_mat = _kaldiio().load_mat
    try:
        statics = np.asarray(load_mat(rxspecifier), np.float32)
    except Exception as error:  # A truncated or missing ark: skip this utterance.
        return None, f"unreadable features ({type(error).__name__}: {error})"
    if statics.ndim != 2 or statics.shape[1] != features.NUM_MEL_BINS:
        # Every utterance of the set would fail the same way: a setup error, not a skip.
        raise ValueError(f"{key}: features of shape {statics.shape}, expected "
                         f"(frames, {features.NUM_MEL_BINS}) log-mel filterbanks")
    return statics, None


def read_wav_statics(path, sample_rate, wav_log_mel=None):
    """(log-mel (T, 64) float32, None) or (None, reason) for one WAV file; `wav_log_mel` is a
    `wav_log_mel_function(sample_rate)` (made here when None; pass one to avoid retracing)."""
    wav_log_mel = wav_log_mel or wav_log_mel_function(sample_rate)
    try:
        statics, rate = wav_log_mel(tf.io.read_file(path))
    except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError,
            tf.errors.UnknownError) as error:
        return None, f"undecodable wav ({error.message.splitlines()[0][:200]})"
    if int(rate) != sample_rate:
        return None, f"sample rate {int(rate)} Hz, expected {sample_rate}"
    return statics.numpy(), None


@functools.lru_cache(maxsize=None)
def wav_log_mel_function(sample_rate):
    """A tf.function (one per rate, traced once): WAV bytes -> (log-mel (T, 64) computed at
    `sample_rate`, the file's own sample rate)."""

    @tf.function(input_signature=[tf.TensorSpec([], tf.string)])
    def wav_log_mel(contents):
        audio, rate = tf.audio.decode_wav(contents, desired_channels=1)
        return features.log_mel(audio[:, 0], sample_rate), rate

    return wav_log_mel


def make_corpus(source, path, *, alignments=None, num_states=None, sample_rate=16000):
    """A `KaldiCorpus` (path = feats.scp) or an `AudioCorpus` (path = directory or list file)."""
    if source == "kaldi":
        if alignments is None:
            raise ValueError("kaldi data needs alignments (a text file of "
                             "`utt_id state_1 ... state_T` lines)")
        return KaldiCorpus(path, alignments, num_states)
    if source == "audio":
        return AudioCorpus(path, num_states, sample_rate)
    raise ValueError(f"Unknown speech source {source!r}; use 'kaldi' or 'audio'")


def read_scp(path):
    """[(utt_id, rxspecifier)] in file order, e.g. ("utt1", "/data/raw_fbank.1.ark:17")."""
    entries = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            parts = line.strip().split(None, 1)
            if not parts:
                continue
            if len(parts) != 2:
                raise ValueError(f"{path}:{number}: expected `utt_id rxspecifier`")
            entries.append((parts[0], parts[1]))
    return entries


def read_alignments(path):
    """{utt_id: int32 state ids} from `utt_id s_1 ... s_T` lines (blank lines ignored)."""
    alignments = {}
    with open(path) as f:
        for number, line in enumerate(f, 1):
            key, _, rest = line.strip().partition(" ")
            if not key:
                continue
            try:
                alignments[key] = np.array(rest.split(), dtype=np.int64).astype(np.int32)
            except ValueError:
                raise ValueError(f"{path}:{number}: expected `utt_id int int ...`") from None
    return alignments


def list_wavs(path):
    """[(utt_id, wav path)] sorted by id, from a directory tree or a list file."""
    if os.path.isdir(path):
        root, wavs = path, []
        for folder, dirs, files in os.walk(path, followlinks=True):
            dirs.sort()
            wavs.extend(os.path.join(folder, f) for f in sorted(files)
                        if f.lower().endswith(".wav"))
    elif os.path.isfile(path):
        root = os.path.dirname(os.path.abspath(path))
        with open(path) as f:
            wavs = [os.path.join(root, line.strip()) for line in f if line.strip()]
    else:
        raise FileNotFoundError(f"{path} is neither a directory nor a list file")
    found = [(os.path.splitext(os.path.relpath(w, root))[0].replace(os.sep, "/"), w)
             for w in wavs]
    return sorted(found)


def _read_labels(wav_path):
    stem = os.path.splitext(wav_path)[0]
    for suffix in LABEL_SUFFIXES:
        label_path = stem + suffix
        if os.path.exists(label_path):
            if suffix == ".npy":
                return np.load(label_path).reshape(-1).astype(np.int32)
            with open(label_path) as f:
                return np.array(f.read().split(), dtype=np.int64).astype(np.int32)
    return None


def _check_label_range(utt, num_states):
    # Out-of-range labels would silently poison the loss: fail loudly, naming the utterance.
    if utt.labels is not None and len(utt.labels):
        low, high = int(utt.labels.min()), int(utt.labels.max())
        if low < 0 or high >= num_states:
            raise ValueError(f"{utt.key}: labels in [{low}, {high}], outside "
                             f"[0, num_states={num_states})")


def _kaldiio():
    try:
        import kaldiio
    except ImportError as error:
        raise ImportError("Kaldi data needs kaldiio (pip install kaldiio)") from error
    return kaldiio
