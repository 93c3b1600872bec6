"""Small speech corpora written by the tests: a Kaldi feats.scp/ark + alignments, WAV files."""

import pathlib

import numpy as np
import pytest
import tensorflow as tf

from bl_keras.speech import features

# Frame counts of the Kaldi test utterances; utt3 has no alignment, utt5 one label too many.
KALDI_FRAMES = {"utt0": 23, "utt1": 31, "utt2": 17, "utt3": 26, "utt4": 40, "utt5": 29,
                "utt6": 12, "utt7": 35}
MISSING, MISMATCHED = "utt3", "utt5"


class KaldiData:
    """Paths and the values the tests expect; labels are unique frame ids (0 .. frames - 1 in
    utterance order), so every example names the frame it came from."""

    def __init__(self, root):
        import kaldiio

        rng = np.random.default_rng(0)
        self.statics = {key: rng.normal(size=(n, 64)).astype("float32") * 3 + 1
                        for key, n in KALDI_FRAMES.items()}
        self.scp = str(root / "feats.scp")
        kaldiio.save_ark(str(root / "feats.ark"), self.statics, scp=self.scp)
        self.labels, next_id = {}, 0
        self.alignments = str(root / "ali.txt")
        with open(self.alignments, "w") as f:
            for key, n in KALDI_FRAMES.items():
                if key == MISSING:
                    continue
                count = n + 1 if key == MISMATCHED else n
                ids = np.arange(next_id, next_id + count)
                next_id += count
                self.labels[key] = ids
                f.write(key + " " + " ".join(map(str, ids)) + "\n")
        self.num_states = next_id
        self.valid = [k for k in KALDI_FRAMES if k not in (MISSING, MISMATCHED)]
        self.valid_frames = sum(KALDI_FRAMES[k] for k in self.valid)
        self.label_frames = sum(len(v) for v in self.labels.values())  # what num_examples counts

    def expected_windows(self, key):
        return features.context_windows(features.cmvn(features.deltas(self.statics[key]))).numpy()


@pytest.fixture(scope="session")
def kaldi_data(tmp_path_factory):
    return KaldiData(tmp_path_factory.mktemp("kaldi"))


def write_wav(path, waveform, sample_rate):
    tf.io.write_file(str(path), tf.audio.encode_wav(
        tf.constant(waveform, tf.float32)[:, None], sample_rate))


def tone(seconds, sample_rate, hz, seed):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return (0.3 * np.sin(2 * np.pi * hz * t) + 0.01 * rng.normal(size=t.shape)).astype("float32")


@pytest.fixture(scope="session")
def audio_dir(tmp_path_factory):
    """8 kHz WAV files: 3 good ones (label files .labels, .txt, .npy), a corrupt file, a file
    at 16 kHz, a file whose labels are one short, and one without labels."""
    root = pathlib.Path(tmp_path_factory.mktemp("audio"))
    (root / "sub").mkdir()
    good = {"a": (0.50, ".labels"), "b": (0.33, ".txt"), "sub/c": (0.71, ".npy")}
    for i, (key, (seconds, suffix)) in enumerate(good.items()):
        wave = tone(seconds, 8000, 300 + 200 * i, i)
        write_wav(root / f"{key}.wav", wave, 8000)
        labels = np.arange(features.num_frames(len(wave), 8000)) % 4 + i
        if suffix == ".npy":
            np.save(root / f"{key}.npy", labels)
        else:
            (root / f"{key}{suffix}").write_text(" ".join(map(str, labels)) + "\n")
    (root / "corrupt.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk")
    (root / "corrupt.labels").write_text("0 1 2\n")
    write_wav(root / "wide.wav", tone(0.3, 16000, 500, 7), 16000)
    (root / "wide.labels").write_text("0\n" * 28)
    short = tone(0.4, 8000, 900, 8)
    write_wav(root / "short.wav", short, 8000)
    (root / "short.labels").write_text("1\n" * (features.num_frames(len(short), 8000) - 1))
    write_wav(root / "unlabelled.wav", tone(0.2, 8000, 400, 9), 8000)
    return root
