"""A small synthetic speech-like corpus, generated locally (no download), for the speech demo.

Utterances of 1.5-3.5 s at 16 kHz (16-bit WAV) are sequences of segments of 8 "phone" classes,
each a distinct spectro-temporal pattern:

    sil     background noise only
    aa, iy, uw  voiced "vowels": harmonics of a random pitch (100-180 Hz) shaped by two formants
            (750/1200, 300/2300, 350/800 Hz), jittered +-8% per utterance ("speaker")
    s, sh   fricatives: noise in 4.5-7.5 kHz and 2-4 kHz
    up, down    glides: a tone sweeping 400 -> 2400 Hz or back over the segment; at any one
            frame both look alike, so telling them apart needs the temporal context window

Segments last 5-30 frames (10 ms each), consecutive segments differ in class, amplitudes vary
per segment (about 20 dB), edges fade over 2.5 ms, and white noise is added at 15-35 dB below
the mean signal power (random per utterance). At 8 kHz every frequency is halved.

Labels follow the features' framing (25 ms windows every 10 ms, `features.num_frames`): an
utterance of T frames has 160 T + 240 samples (at 16 kHz), and frame t, centred on sample
160 t + 200, carries the class of the segment playing there. Files: `<root>/{train,val}/
uNNNN.wav` with `uNNNN.labels` (one class id per line per frame), read by
`build_speech_dataset("audio", "<root>/train", ...)`.

Generation is deterministic: utterance i of a split is drawn from
``np.random.default_rng((seed, split, i))``. A marker file records the parameters; calling
again with the same parameters does nothing.

    python -m bl_keras.speech.demo --out DIR
"""

import argparse
import json
import os

import numpy as np
import tensorflow as tf

from bl_keras.data import generated
from bl_keras.speech import features

CLASSES = ("sil", "aa", "iy", "uw", "s", "sh", "up", "down")
FORMANTS = {"aa": (750.0, 1200.0), "iy": (300.0, 2300.0), "uw": (350.0, 800.0)}
NOISE_BANDS = {"s": (4500.0, 7500.0), "sh": (2000.0, 4000.0)}
GLIDE = (400.0, 2400.0)
MARKER = "speech_demo.json"
_VERSION = 1  # Bump when the synthesis changes, so old trees are rebuilt.
_SPLITS = ("train", "val")


def make_speech_demo(root, *, num_train=100, num_val=20, sample_rate=16000, seed=0):
    """Writes ``root/{train,val}/uNNNN.{wav,labels}`` and returns `root`."""
    if sample_rate not in (8000, 16000):
        raise ValueError("sample_rate must be 8000 or 16000")
    params = dict(version=_VERSION, num_train=num_train, num_val=num_val,
                  sample_rate=sample_rate, seed=seed, classes=list(CLASSES))
    if generated.is_current(root, MARKER, params, _SPLITS):
        return root
    with generated.building(root, MARKER, params, _SPLITS):
        for split_id, (split, count) in enumerate(zip(_SPLITS, (num_train, num_val))):
            split_dir = os.path.join(root, split)
            os.makedirs(split_dir)
            for i in range(count):
                rng = np.random.default_rng((seed, split_id, i))
                waveform, labels = synthesize(rng, sample_rate)
                stem = os.path.join(split_dir, f"u{i:04d}")
                wav = tf.audio.encode_wav(waveform[:, None], sample_rate)
                tf.io.write_file(stem + ".wav", wav)
                with open(stem + ".labels", "w") as f:
                    f.write("\n".join(str(c) for c in labels) + "\n")
    return root


def read_marker(root):
    """The parameters a finished demo tree was made with (classes, sample_rate, ...)."""
    with open(os.path.join(root, MARKER)) as f:
        return json.load(f)


def synthesize(rng, sample_rate=16000, min_frames=150, max_frames=350):
    """One utterance: (float32 waveform in [-1, 1], int32 frame labels)."""
    _, hop, _ = features.frame_geometry(sample_rate)
    scale = sample_rate / 16000.0
    speaker = rng.uniform(0.92, 1.08)  # formant / pitch scaling of this "speaker"
    target = rng.integers(min_frames, max_frames + 1)
    classes, durations = [], []
    while sum(durations) < target:
        choices = [c for c in range(len(CLASSES)) if not classes or c != classes[-1]]
        classes.append(int(rng.choice(choices)))
        durations.append(int(rng.integers(5, 31)))
    num_frames = sum(durations)
    lead = (features.frame_geometry(sample_rate)[0] - hop) // 2  # 120 samples at 16 kHz
    total = hop * num_frames + 2 * lead  # exactly num_frames frames (snip edges)
    signal = np.zeros(total)
    start = 0
    for index, (label, frames) in enumerate(zip(classes, durations)):
        begin = 0 if index == 0 else lead + hop * start
        end = total if index == len(classes) - 1 else lead + hop * (start + frames)
        segment = _segment(rng, CLASSES[label], end - begin, sample_rate, scale, speaker)
        signal[begin:end] = segment * _fades(end - begin, int(0.0025 * sample_rate))
        start += frames
    power = np.mean(signal**2)
    noise_db = rng.uniform(15.0, 35.0)
    signal += rng.normal(0.0, np.sqrt(power * 10 ** (-noise_db / 10)), size=total)
    signal *= 0.5 / max(np.abs(signal).max(), 1e-9)  # headroom for 16-bit PCM
    labels = np.repeat(classes, durations).astype(np.int32)
    return signal.astype(np.float32), labels


def _segment(rng, name, length, sample_rate, scale, speaker):
    t = np.arange(length) / sample_rate
    amplitude = 10 ** rng.uniform(-1.0, 0.0)
    if name == "sil":
        return np.zeros(length)
    if name in FORMANTS:
        f0 = rng.uniform(100.0, 180.0) * scale * speaker
        harmonics = np.arange(1, int(0.47 * sample_rate / f0) + 1) * f0
        envelope = sum(np.exp(-0.5 * ((harmonics - f * scale * speaker) / (90.0 * scale)) ** 2)
                       for f in FORMANTS[name]) + 0.01
        phases = rng.uniform(0, 2 * np.pi, size=len(harmonics))
        wave = (envelope[:, None] * np.sin(2 * np.pi * harmonics[:, None] * t[None, :]
                                           + phases[:, None])).sum(axis=0)
        return amplitude * wave / np.sqrt(np.mean(wave**2))
    if name in NOISE_BANDS:
        low, high = (f * scale for f in NOISE_BANDS[name])
        spectrum = np.fft.rfft(rng.normal(size=length))
        freqs = np.fft.rfftfreq(length, 1.0 / sample_rate)
        spectrum[(freqs < low) | (freqs > high)] = 0.0
        wave = np.fft.irfft(spectrum, length)
        return amplitude * wave / max(np.sqrt(np.mean(wave**2)), 1e-9)
    low, high = (f * scale * speaker for f in GLIDE)
    start, stop = (low, high) if name == "up" else (high, low)
    frequency = start + (stop - start) * np.arange(length) / max(length - 1, 1)
    phase = 2 * np.pi * np.cumsum(frequency) / sample_rate + rng.uniform(0, 2 * np.pi)
    return amplitude * np.sqrt(2.0) * np.sin(phase)


def _fades(length, ramp):
    gain = np.ones(length)
    ramp = min(ramp, length // 2)
    if ramp:
        rise = 0.5 - 0.5 * np.cos(np.pi * np.arange(ramp) / ramp)
        gain[:ramp], gain[length - ramp:] = rise, rise[::-1]
    return gain


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="root of the tree")
    parser.add_argument("--num-train", type=int, default=100)
    parser.add_argument("--num-val", type=int, default=20)
    parser.add_argument("--sample-rate", type=int, default=16000, choices=(8000, 16000))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    make_speech_demo(args.out, num_train=args.num_train, num_val=args.num_val,
                     sample_rate=args.sample_rate, seed=args.seed)
    print(f"Speech demo data ready in {args.out} ({len(CLASSES)} classes)")


if __name__ == "__main__":
    main()
