"""Speech features checked against an independent numpy computation."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from bl_keras.speech import features

RATES = (8000, 16000)


# --- an independent numpy reference (Kaldi's fbank recipe, HTK mel written out here) ----------

def htk_mel(hz):
    return 1127.0 * np.log(1.0 + np.asarray(hz, np.float64) / 700.0)


def htk_hz(mel):
    return 700.0 * (np.exp(np.asarray(mel, np.float64) / 1127.0) - 1.0)


def reference_filterbank(sample_rate, num_bins=64, fft=None, low=20.0):
    """Kaldi MelBanks: triangles in mel space over FFT bin frequencies k * sr / fft."""
    high = sample_rate / 2.0
    edges = np.linspace(htk_mel(low), htk_mel(high), num_bins + 2)
    bin_mel = htk_mel(np.arange(fft // 2 + 1) * sample_rate / fft)
    bank = np.zeros((fft // 2 + 1, num_bins))
    for m in range(num_bins):
        left, centre, right = edges[m:m + 3]
        rising = (bin_mel - left) / (centre - left)
        falling = (right - bin_mel) / (right - centre)
        bank[:, m] = np.clip(np.minimum(rising, falling), 0.0, None)
    return bank, htk_hz(edges[1:-1])


def reference_log_mel(waveform, sample_rate):
    window, hop = int(0.025 * sample_rate), int(0.010 * sample_rate)
    fft = 256 if sample_rate == 8000 else 512
    x = np.asarray(waveform, np.float64) * 32768.0
    count = 1 + (len(x) - window) // hop
    out = []
    n = np.arange(window)
    povey = (0.5 - 0.5 * np.cos(2 * np.pi * n / (window - 1))) ** 0.85
    bank, _ = reference_filterbank(sample_rate, fft=fft)
    for t in range(count):
        frame = x[t * hop:t * hop + window].copy()
        frame -= frame.mean()
        emphasised = frame.copy()
        emphasised[1:] -= 0.97 * frame[:-1]
        emphasised[0] -= 0.97 * frame[0]
        spectrum = np.abs(np.fft.rfft(emphasised * povey, fft)) ** 2
        out.append(np.log(np.maximum(spectrum @ bank, np.finfo(np.float32).eps)))
    return np.array(out)


def reference_deltas(c):
    """Kaldi DeltaFeatures, written as two passes of its clamped-index sums."""
    T = len(c)

    def at(t):
        return c[min(max(t, 0), T - 1)]

    first = np.array([sum(n * (at(t + n) - at(t - n)) for n in (1, 2)) / 10.0 for t in range(T)])
    taps = np.convolve([-0.2, -0.1, 0, 0.1, 0.2], [-0.2, -0.1, 0, 0.1, 0.2])  # offsets -4..4
    second = np.array([sum(taps[j + 4] * at(t + j) for j in range(-4, 5)) for t in range(T)])
    return np.stack([c, first, second], axis=-1)


# --- log-mel -------------------------------------------------------------------------------

@pytest.mark.parametrize("sample_rate", RATES)
def test_mel_matrix_equals_the_reference_filterbank(sample_rate):
    _, _, fft = features.frame_geometry(sample_rate)
    bank, _ = reference_filterbank(sample_rate, fft=fft)
    np.testing.assert_allclose(features.mel_matrix(sample_rate).numpy(), bank, atol=2e-5)


@pytest.mark.parametrize("sample_rate", RATES)
def test_pure_tone_energy_lands_in_the_nearest_mel_bin(sample_rate):
    _, centres = reference_filterbank(sample_rate, fft=features.frame_geometry(sample_rate)[2])
    t = np.arange(sample_rate // 2) / sample_rate
    hits = []
    for k in (28, 36, 44, 52, 60):
        # A quarter of the way to the next centre: bin k is clearly the nearest.
        tone = centres[k] + 0.25 * (centres[k + 1] - centres[k])
        x = (0.5 * np.sin(2 * np.pi * tone * t)).astype("float32")
        mel = features.log_mel(x, sample_rate).numpy()
        assert int(np.argmin(np.abs(centres - tone))) == k
        hits.append(int(np.argmax(mel.mean(axis=0))))
    assert hits == [28, 36, 44, 52, 60]


@pytest.mark.parametrize("sample_rate", RATES)
def test_log_mel_matches_the_numpy_reference(sample_rate):
    rng = np.random.default_rng(0)
    t = np.arange(int(0.3 * sample_rate)) / sample_rate
    x = 0.3 * np.sin(2 * np.pi * 700 * t) + 0.05 * rng.normal(size=t.shape)
    x[: sample_rate // 100] = 0.0  # 10 ms of digital silence: the floor must match too
    ours = features.log_mel(x.astype("float32"), sample_rate).numpy()
    reference = reference_log_mel(x.astype("float32"), sample_rate)
    assert ours.shape == reference.shape == (28, 64)  # 1 + (0.3 s - 25 ms) // 10 ms
    np.testing.assert_allclose(ours, reference, atol=2e-3, rtol=1e-4)


@pytest.mark.parametrize("sample_rate,samples,frames", [(8000, 199, 0), (8000, 200, 1),
                                                        (8000, 279, 1), (8000, 280, 2),
                                                        (16000, 16000, 98), (16000, 400, 1)])
def test_snip_edges_frame_count(sample_rate, samples, frames):
    assert features.num_frames(samples, sample_rate) == frames
    out = features.log_mel(np.zeros(samples, "float32"), sample_rate)
    assert tuple(out.shape) == (frames, 64)


def test_frame_geometry():
    assert features.frame_geometry(8000) == (200, 80, 256)
    assert features.frame_geometry(16000) == (400, 160, 512)


def test_silence_is_floored_not_minus_infinity():
    out = features.log_mel(np.zeros(800, "float32"), 8000).numpy()
    np.testing.assert_allclose(out, np.log(np.finfo(np.float32).eps), rtol=1e-6)


# --- deltas, cmvn ------------------------------------------------------------------------------

def test_deltas_of_a_ramp_are_the_slope_away_from_the_edges():
    slope = np.linspace(0.5, -1.5, 64)
    ramp = np.arange(20)[:, None] * slope[None, :] + 3.0
    out = features.deltas(ramp.astype("float32")).numpy()
    assert out.shape == (20, 64, 3)
    np.testing.assert_allclose(out[..., 0], ramp, rtol=1e-6)
    np.testing.assert_allclose(out[2:-2, :, 1], np.broadcast_to(slope, (16, 64)), atol=1e-5)
    np.testing.assert_allclose(out[4:-4, :, 2], 0.0, atol=1e-5)
    # At the first frame the clamped window sees c0, c0, c0, c1, c2: (1 + 2 * 2) / 10 * slope.
    np.testing.assert_allclose(out[0, :, 1], 0.5 * slope, atol=1e-5)


def test_deltas_equal_kaldis_clamped_sums_everywhere():
    c = np.random.default_rng(1).normal(size=(11, 64))
    np.testing.assert_allclose(features.deltas(c.astype("float32")).numpy(),
                               reference_deltas(c), atol=1e-5)


def test_cmvn_gives_zero_mean_unit_std_per_bin_and_channel():
    rng = np.random.default_rng(2)
    x = rng.normal(5.0, 3.0, size=(200, 64, 3)) * rng.uniform(0.1, 10.0, size=(1, 64, 3))
    out = features.cmvn(x.astype("float32")).numpy()
    np.testing.assert_allclose(out.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(out.std(axis=0), 1.0, atol=1e-4)
    np.testing.assert_allclose(out, (x - x.mean(0)) / x.std(0), atol=1e-4)


def test_cmvn_of_a_constant_bin_is_zero():
    x = np.full((30, 64), 0.1, "float32")
    assert np.abs(features.cmvn(x).numpy()).max() < 1e-3


# --- context windows ---------------------------------------------------------------------------

def test_context_window_centre_is_the_frame_and_edges_replicate():
    T = 30
    feats = np.random.default_rng(3).normal(size=(T, 64, 3)).astype("float32")
    windows = features.context_windows(feats).numpy()
    assert windows.shape == (T, 64, 49, 3)
    np.testing.assert_array_equal(windows[:, :, 24, :], feats)  # centre = frame t
    # Window of frame 5: frames -19..29; the first 19 replicate frame 0.
    np.testing.assert_array_equal(windows[5, :, :19], np.repeat(feats[0][:, None], 19, axis=1))
    np.testing.assert_array_equal(windows[5, :, 19:], feats[0:30].transpose(1, 0, 2))
    # Window of the last frame: frames 5..53; 24 replicas of frame 29 at the end.
    np.testing.assert_array_equal(windows[T - 1, :, :25], feats[5:30].transpose(1, 0, 2))
    np.testing.assert_array_equal(windows[T - 1, :, 25:],
                                  np.repeat(feats[T - 1][:, None], 24, axis=1))


def test_utterance_input_holds_every_window():
    feats = np.random.default_rng(4).normal(size=(7, 64, 3)).astype("float32")
    whole = features.utterance_input(feats).numpy()
    assert whole.shape == (64, 7 + 48, 3)
    windows = features.context_windows(feats).numpy()
    for t in range(7):
        np.testing.assert_array_equal(whole[:, t:t + 49], windows[t])
    padded = features.pad_context(feats)
    np.testing.assert_array_equal(features.window_at(padded, 3).numpy(), windows[3])
    np.testing.assert_array_equal(features.window_at(padded, tf.constant([0, 6])).numpy(),
                                  windows[[0, 6]])


def test_even_context_width_is_rejected():
    with pytest.raises(ValueError, match="odd"):
        features.context_windows(np.zeros((3, 64, 3), "float32"), width=48)


def test_features_run_inside_tf_data():
    waves = tf.data.Dataset.from_tensor_slices(np.zeros((2, 1200), "float32") + 0.01)
    out = waves.map(lambda w: features.context_windows(features.utterance_features(w, 8000)))
    shapes = [tuple(x.shape) for x in out]
    assert shapes == [(13, 64, 49, 3)] * 2  # 1 + (1200 - 200) // 80 frames


# --- layers ------------------------------------------------------------------------------------

def test_layers_equal_the_functions_and_round_trip_through_keras_files(tmp_path):
    rng = np.random.default_rng(5)
    wave = rng.normal(0, 0.1, size=(2, 4000)).astype("float32")
    inputs = keras.Input((4000,))
    x = features.LogMel(sample_rate=8000, name="logmel")(inputs)
    x = features.Deltas()(x)
    x = features.UtteranceCMVN()(x)
    outputs = features.ContextPad(width=49)(x)
    model = keras.Model(inputs, outputs)
    assert model.output_shape == (None, 64, 48 + 48, 3)
    got = model.predict(wave, verbose=0)
    for i in range(2):
        expected = features.utterance_input(features.utterance_features(wave[i], 8000))
        np.testing.assert_allclose(got[i], expected.numpy(), atol=1e-4)
    assert json.loads(json.dumps(model.get_layer("logmel").get_config()))["sample_rate"] == 8000
    path = tmp_path / "frontend.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    np.testing.assert_allclose(loaded.predict(wave, verbose=0), got, atol=1e-5)
