"""Acoustic features for the speech models: 64 log-mel bins, deltas, CMVN, 49-frame context.

The models (`bl_keras.speech.models`) read (batch, 64 bins, T frames, 3 channels = static, delta,
delta-delta) and predict the centre frame of every 49-frame window. The chain, per utterance:

    waveform (N,) --log_mel--> (T, 64) --deltas--> (T, 64, 3) --cmvn--> (T, 64, 3)
        --context_windows--> (T, 64, 49, 3)   one model input per frame (training data), or
        --utterance_input--> (64, T + 48, 3)  the whole utterance at once (T predictions out)

`log_mel` follows Kaldi's `compute-fbank-feats` defaults without dither, so features of the same
file match what a Kaldi recipe stores in feats.scp (`--num-mel-bins=64`):

- frames of 25 ms every 10 ms, "snip edges": T = 1 + (N - window) // hop frames (0 if N < window),
  frame t covers samples [t * hop, t * hop + window);
- per frame: DC offset removed, pre-emphasis 0.97 (x[i] -= 0.97 x[i-1], x[0] -= 0.97 x[0]), Povey
  window (Hann ** 0.85, Kaldi's default), zero-padded to the next power of two (8 kHz: 200 -> 256,
  16 kHz: 400 -> 512), power spectrum;
- 64 triangular filters equally spaced on the HTK mel scale (1127 ln(1 + f / 700)) from 20 Hz to
  the Nyquist frequency, triangles in mel space (`tf.signal.linear_to_mel_weight_matrix` builds
  exactly Kaldi's MelBanks);
- natural log of the mel energies floored at float32 epsilon (1.19e-7), with the waveform scaled
  to the 16-bit integer range first (Kaldi reads samples as integers), so the floor means the same.

`deltas` is Kaldi's `add-deltas` (order 2, window 2), `cmvn` is per-utterance mean and variance
normalisation (`apply-cmvn --norm-vars=true` with utterance statistics), applied after the deltas
so each of the 3 channels has zero mean and unit variance per bin. Context windows replicate the
first / last frame at utterance boundaries (the models never pad in time themselves).

The functions take unbatched tensors (time first) and are pure TF ops, so they run in tf.data
maps and tf.functions. The Keras layers at the end wrap them for batches of equal-length
utterances, e.g. a waveform -> logits model for export.
"""

import keras
import tensorflow as tf

NUM_MEL_BINS = 64
CONTEXT = 49  # frames per model input: the centre frame and 24 either side
WINDOW_SECONDS = 0.025
HOP_SECONDS = 0.010
LOW_HZ = 20.0  # Kaldi's default --low-freq
PREEMPHASIS = 0.97
POVEY_POWER = 0.85
LOG_FLOOR = 1.1920928955078125e-07  # float32 epsilon, Kaldi's energy floor
WAVEFORM_SCALE = 32768.0  # [-1, 1] floats -> the 16-bit integer range Kaldi computes in
CMVN_EPSILON = 1e-8  # added to the variance: a constant bin normalises to 0, not to noise
# Kaldi's delta filter for window 2: d_t = sum_n n (c_{t+n} - c_{t-n}) / (2 sum_n n^2), n = 1..2.
DELTA_FILTER = (-0.2, -0.1, 0.0, 0.1, 0.2)

register = keras.saving.register_keras_serializable(package="bl_keras")


def frame_geometry(sample_rate):
    """(window, hop, fft_length) in samples: 25 ms, 10 ms, next power of two >= window."""
    window = int(round(WINDOW_SECONDS * sample_rate))
    hop = int(round(HOP_SECONDS * sample_rate))
    return window, hop, 1 << (window - 1).bit_length()


def num_frames(num_samples, sample_rate):
    """Frames `log_mel` makes of `num_samples` samples (Kaldi's snip-edges rule)."""
    window, hop, _ = frame_geometry(sample_rate)
    return 0 if num_samples < window else 1 + (num_samples - window) // hop


def mel_matrix(sample_rate, num_bins=NUM_MEL_BINS, low_hz=LOW_HZ, high_hz=None):
    """(fft_length // 2 + 1, num_bins) triangular filters on the HTK mel scale."""
    _, _, fft_length = frame_geometry(sample_rate)
    return tf.signal.linear_to_mel_weight_matrix(
        num_mel_bins=num_bins, num_spectrogram_bins=fft_length // 2 + 1,
        sample_rate=sample_rate, lower_edge_hertz=low_hz,
        upper_edge_hertz=high_hz or sample_rate / 2.0, dtype=tf.float32)


def povey_window(length):
    """Kaldi's default window: the symmetric Hann window raised to 0.85 (zero at both ends)."""
    n = tf.range(length, dtype=tf.float32)
    hann = 0.5 - 0.5 * tf.cos(2.0 * 3.141592653589793 * n / float(length - 1))
    return tf.pow(hann, POVEY_POWER)


def log_mel(waveform, sample_rate, num_bins=NUM_MEL_BINS, low_hz=LOW_HZ, high_hz=None):
    """Log-mel filterbank energies of float samples in [-1, 1].

    Args:
      waveform: (..., N) float samples (what `tf.audio.decode_wav` returns, channel squeezed).
      sample_rate: Python int, e.g. 8000 (telephone speech) or 16000.

    Returns:
      (..., T, num_bins) float32 with T = `num_frames(N, sample_rate)`.
    """
    window, hop, fft_length = frame_geometry(sample_rate)
    samples = tf.cast(waveform, tf.float32) * WAVEFORM_SCALE
    frames = tf.signal.frame(samples, window, hop, pad_end=False)  # (..., T, window)
    frames -= tf.reduce_mean(frames, axis=-1, keepdims=True)
    # Pre-emphasis inside each frame; the first sample uses itself as its predecessor (Kaldi).
    previous = tf.concat([frames[..., :1], frames[..., :-1]], axis=-1)
    frames = (frames - PREEMPHASIS * previous) * povey_window(window)
    # Zero-pad explicitly: rfft's own padding rejects an utterance of zero frames.
    pad = [[0, 0]] * (frames.shape.rank - 1) + [[0, fft_length - window]]
    power = tf.square(tf.abs(tf.signal.rfft(tf.pad(frames, pad), fft_length=[fft_length])))
    energies = tf.tensordot(power, mel_matrix(sample_rate, num_bins, low_hz, high_hz), 1)
    return tf.math.log(tf.maximum(energies, LOG_FLOOR))


def _replicate_edges(x, before, after, axis):
    """Pads `x` along `axis` by repeating its first / last slice (Kaldi clamps frame indices)."""
    length = tf.shape(x)[axis]
    index = tf.clip_by_value(tf.range(-before, length + after), 0, length - 1)
    return tf.gather(x, index, axis=axis)


def _filter_time(padded, taps, length, axis):
    """sum_j taps[j] * padded[j : j + length] along `axis` (a 'valid' correlation)."""
    out = 0.0
    for j, tap in enumerate(taps):
        if tap:
            out += tap * tf.gather(padded, tf.range(j, j + length), axis=axis)
    return out


def _second_order_filter():
    # Kaldi's DeltaFeatures: order-2 coefficients are the delta filter convolved with itself,
    # applied to the clamped input (not the delta of the edge-replicated delta).
    first = DELTA_FILTER
    taps = [0.0] * (2 * len(first) - 1)
    for i, a in enumerate(first):
        for j, b in enumerate(first):
            taps[i + j] += a * b
    return tuple(taps)


def deltas(feats):
    """Kaldi's `add-deltas` (order 2, window 2), stacked as channels.

    Args:
      feats: (..., T, bins) static features.

    Returns:
      (..., T, bins, 3): static, delta, delta-delta. Delta is
      sum_{n=1,2} n (c_{t+n} - c_{t-n}) / 10 with frame indices clamped to [0, T - 1]; delta-delta
      applies the 9-tap self-convolution of that filter to the clamped statics.
    """
    feats = tf.convert_to_tensor(feats, tf.float32)
    axis = feats.shape.rank - 2
    length = tf.shape(feats)[axis]
    second = _second_order_filter()
    half = len(second) // 2  # 4 frames either side
    padded = _replicate_edges(feats, half, half, axis)
    first_taps = (0.0, 0.0) + DELTA_FILTER + (0.0, 0.0)  # centred in the same 9-frame span
    return tf.stack([feats, _filter_time(padded, first_taps, length, axis),
                     _filter_time(padded, second, length, axis)], axis=-1)


def cmvn(feats, time_axis=0):
    """Per-utterance mean / variance normalisation over time, per bin and per channel.

    Args:
      feats: e.g. (T, 64) or (T, 64, 3); `time_axis` is the frame axis (1 for a batch).

    Returns:
      feats - mean, divided by sqrt(variance + 1e-8), the statistics taken over `time_axis`.
    """
    feats = tf.convert_to_tensor(feats, tf.float32)
    mean = tf.reduce_mean(feats, axis=time_axis, keepdims=True)
    centred = feats - mean
    variance = tf.reduce_mean(tf.square(centred), axis=time_axis, keepdims=True)
    return centred * tf.math.rsqrt(variance + CMVN_EPSILON)


def pad_context(feats, width=CONTEXT, time_axis=0):
    """Adds (width - 1) / 2 copies of the first frame before and of the last frame after."""
    half = _half_width(width)
    return _replicate_edges(tf.convert_to_tensor(feats), half, half, time_axis)


def utterance_input(feats, width=CONTEXT):
    """A whole utterance as one model input: (T, bins, C) -> (bins, T + width - 1, C).

    The acoustic models shorten time by width - 1 frames, so this input gives exactly T
    predictions, prediction t for the window centred on frame t.
    """
    return tf.transpose(pad_context(feats, width), [1, 0, 2])


def context_windows(feats, width=CONTEXT):
    """One model input per frame: (T, bins, C) -> (T, bins, width, C).

    Window t holds frames t - 24 .. t + 24 (width 49) in time order, frame t in the middle;
    frames before the first and after the last are replicas of those frames.
    """
    padded = pad_context(feats, width)
    length = tf.shape(feats)[0]
    index = tf.range(length)[:, None] + tf.range(width)[None, :]  # (T, width)
    windows = tf.gather(padded, index)  # (T, width, bins, C)
    return tf.transpose(windows, [0, 2, 1, 3])


def window_at(padded, start, width=CONTEXT):
    """The model input whose window starts at row `start` of a `pad_context`-ed utterance
    (or of several concatenated ones): (rows, bins, C) -> (bins, width, C); `start` may also be
    a vector of rows, giving (n, bins, width, C)."""
    index = tf.convert_to_tensor(start)[..., None] + tf.range(width)
    windows = tf.gather(padded, index)  # (..., width, bins, C)
    rank = windows.shape.rank
    return tf.transpose(windows, list(range(rank - 3)) + [rank - 2, rank - 3, rank - 1])


def utterance_features(waveform, sample_rate):
    """waveform (N,) -> normalised (T, 64, 3): log-mel, deltas, CMVN."""
    return cmvn(deltas(log_mel(waveform, sample_rate)))


def _half_width(width):
    if width < 1 or width % 2 == 0:
        raise ValueError(f"context width must be odd and positive, got {width}")
    return (width - 1) // 2


# ----------------------------------------------------------------------------------------------
# Keras layers: the same steps for a batch of equal-length utterances, time on axis 1.


@register
class LogMel(keras.layers.Layer):
    """(batch, N) float waveform in [-1, 1] -> (batch, T, num_bins) log-mel energies."""

    def __init__(self, sample_rate=16000, num_bins=NUM_MEL_BINS, low_hz=LOW_HZ, high_hz=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.sample_rate = int(sample_rate)
        self.num_bins = int(num_bins)
        self.low_hz = float(low_hz)
        self.high_hz = None if high_hz is None else float(high_hz)

    def call(self, waveform):
        return log_mel(waveform, self.sample_rate, self.num_bins, self.low_hz, self.high_hz)

    def compute_output_shape(self, input_shape):
        frames = None
        if input_shape[-1] is not None:
            frames = num_frames(input_shape[-1], self.sample_rate)
        return tuple(input_shape[:-1]) + (frames, self.num_bins)

    def get_config(self):
        return dict(super().get_config(), sample_rate=self.sample_rate, num_bins=self.num_bins,
                    low_hz=self.low_hz, high_hz=self.high_hz)


@register
class Deltas(keras.layers.Layer):
    """(batch, T, bins) -> (batch, T, bins, 3): static, delta, delta-delta (Kaldi add-deltas)."""

    def call(self, feats):
        return deltas(feats)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (3,)


@register
class UtteranceCMVN(keras.layers.Layer):
    """Mean / variance normalisation over axis 1 (time) of each example, per bin and channel."""

    def call(self, feats):
        return cmvn(feats, time_axis=1)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)


@register
class ContextPad(keras.layers.Layer):
    """(batch, T, bins, C) -> (batch, bins, T + width - 1, C): edge-replicated time padding and
    the models' (frequency, time) layout, so an acoustic model returns T predictions."""

    def __init__(self, width=CONTEXT, **kwargs):
        super().__init__(**kwargs)
        _half_width(width)
        self.width = int(width)

    def call(self, feats):
        return tf.transpose(pad_context(feats, self.width, time_axis=1), [0, 2, 1, 3])

    def compute_output_shape(self, input_shape):
        batch, frames, bins, channels = input_shape
        padded = None if frames is None else frames + self.width - 1
        return (batch, bins, padded, channels)

    def get_config(self):
        return dict(super().get_config(), width=self.width)
