"""The synthetic speech demo corpus."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from bl_keras.speech import data, demo, features


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("speech_demo"))
    return demo.make_speech_demo(root, num_train=6, num_val=2, seed=3)


def test_files_labels_and_frame_counts(demo_root):
    names = sorted(os.listdir(os.path.join(demo_root, "train")))
    assert names[:4] == ["u0000.labels", "u0000.wav", "u0001.labels", "u0001.wav"]
    assert len(names) == 12 and len(os.listdir(os.path.join(demo_root, "val"))) == 4
    for i in range(6):
        stem = os.path.join(demo_root, "train", f"u{i:04d}")
        audio, rate = tf.audio.decode_wav(tf.io.read_file(stem + ".wav"))
        labels = np.loadtxt(stem + ".labels", dtype=int)
        assert int(rate) == 16000
        assert features.num_frames(audio.shape[0], 16000) == len(labels)
        assert 150 <= len(labels) <= 380 and set(labels) <= set(range(8))
        runs = np.diff(np.flatnonzero(np.diff(labels)))  # inner segment lengths
        assert runs.min() >= 5 and runs.max() <= 30
    marker = demo.read_marker(demo_root)
    assert marker["complete"] and marker["classes"] == list(demo.CLASSES)


def test_same_parameters_do_not_regenerate_and_generation_is_deterministic(demo_root,
                                                                           tmp_path):
    wav = os.path.join(demo_root, "train", "u0001.wav")
    before = os.stat(wav).st_mtime_ns
    demo.make_speech_demo(demo_root, num_train=6, num_val=2, seed=3)
    assert os.stat(wav).st_mtime_ns == before
    other = demo.make_speech_demo(str(tmp_path / "again"), num_train=2, num_val=0, seed=3)
    with open(wav, "rb") as a, open(os.path.join(other, "train", "u0001.wav"), "rb") as b:
        assert a.read() == b.read()


def test_refuses_a_foreign_tree(tmp_path):
    (tmp_path / "train").mkdir()
    with pytest.raises(FileExistsError):
        demo.make_speech_demo(str(tmp_path), num_train=1, num_val=1)


def test_classes_have_their_spectral_signature():
    # Mean log-mel spectrum per class over a few utterances: the loudest bin of each class
    # lies in its band (mel bin centres at 16 kHz: bin 20 ~ 0.9 kHz, 34 ~ 2.1, 48 ~ 4.0,
    # 51 ~ 4.6, 62 ~ 7.4).
    rng = np.random.default_rng(0)
    sums = np.zeros((8, 64))
    counts = np.zeros(8)
    for _ in range(4):
        wave, labels = demo.synthesize(rng)
        mel = features.log_mel(wave, 16000).numpy()
        np.add.at(sums, labels, mel)
        counts += np.bincount(labels, minlength=8)
    peak = np.argmax(sums / counts[:, None], axis=1)
    names = dict(zip(demo.CLASSES, peak))
    assert 52 <= names["s"] <= 63  # 4.5-7.5 kHz noise
    assert 34 <= names["sh"] <= 47  # 2-4 kHz noise
    assert names["uw"] < names["aa"] < 30  # formants 350 + 800 Hz / 750 + 1200 Hz
    assert names["s"] > names["sh"] > names["aa"]


def test_pipeline_reads_the_demo(demo_root):
    info = data.build_speech_dataset("audio", os.path.join(demo_root, "val"), training=False,
                                     batch_size=64, seed=0, cache=True)
    labels = np.concatenate([y.numpy() for _, y in info.dataset])
    expected = np.concatenate([np.loadtxt(os.path.join(demo_root, "val", f"u{i:04d}.labels"),
                                          dtype=int) for i in range(2)])
    np.testing.assert_array_equal(labels, expected)
    assert info.num_skipped == 0 and info.num_examples == len(expected)
    with open(os.path.join(demo_root, demo.MARKER)) as f:
        assert json.load(f)["sample_rate"] == 16000
