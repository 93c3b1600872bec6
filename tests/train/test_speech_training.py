"""`python -m train.speech` on small corpora the tests write: both data paths, flags, the demo."""

import numpy as np
import pytest

from tests.train.helpers import fingerprint_line, metrics, run_module

TINY = ["--model=speech.bl_resnet22", "--alpha=2", "--beta=3", "--widths=8,8,16,16",
        "--head_channels=16", "--batch_size=16", "--epochs=1", "--steps_per_epoch=3",
        "--eval_steps=2", "--noprogress", "--cache_data", "--lr=0.4"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from bl_keras.speech.demo import make_speech_demo

    return make_speech_demo(str(tmp_path_factory.mktemp("speech")), num_train=4, num_val=2)


def test_audio_corpus_trains_and_reports_frame_accuracy(corpus, tmp_path):
    proc = run_module("train.speech", TINY + [
        "--data_source=audio", f"--train_data={corpus}/train", f"--val_data={corpus}/val",
        f"--model_dir={tmp_path}"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = metrics(tmp_path)[0]
    assert record["step"] == 3 and np.isfinite(record["train_loss"])
    assert 0.0 <= record["val_top1"] <= 1.0 and record["lr"] > 0
    # Speech counts frames and skipped utterances, not images.
    assert record["frames_per_sec"] > 0 and record["eval_frames_per_sec"] > 0
    assert record["skipped_utterances"] == 0
    assert not [key for key in record if "images" in key], record
    assert fingerprint_line(proc.stdout).startswith("global_step=3 ")


def test_kaldi_features_and_alignments_train(tmp_path):
    kaldiio = pytest.importorskip("kaldiio")
    rng = np.random.default_rng(0)
    ark, scp = str(tmp_path / "feats.ark"), str(tmp_path / "feats.scp")
    lengths = {"utt1": 60, "utt2": 55, "utt3": 50}
    with kaldiio.WriteHelper(f"ark,scp:{ark},{scp}") as writer:
        for utt, frames in lengths.items():
            writer(utt, rng.normal(size=(frames, 64)).astype("float32"))
    with open(tmp_path / "ali.txt", "w") as f:
        for utt, frames in lengths.items():
            if utt == "utt3":
                frames -= 1  # a mismatched alignment: reported and skipped
            f.write(utt + " " + " ".join(str(s) for s in rng.integers(0, 5, frames)) + "\n")
    proc = run_module("train.speech", TINY + [
        "--data_source=kaldi", f"--train_data={scp}", f"--train_alignments={tmp_path / 'ali.txt'}",
        "--num_states=5", f"--model_dir={tmp_path / 'run'}"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "utt3" in proc.stderr
    record = metrics(tmp_path / "run")[0]
    assert record["step"] == 3 and record["skipped_utterances"] >= 1
    assert "Training without validation" in proc.stdout  # no --val_data
    assert not [key for key in record if key.startswith("val_")], record


def test_val_data_with_labels_outside_the_training_states_fails_at_start(corpus, tmp_path):
    import shutil

    val = tmp_path / "val"
    shutil.copytree(f"{corpus}/val", val)
    labels = sorted(val.glob("*.labels"))
    labels[0].write_text(" ".join(["999"] * len(labels[0].read_text().split())))
    proc = run_module("train.speech", TINY + [
        "--data_source=audio", f"--train_data={corpus}/train", f"--val_data={val}",
        f"--model_dir={tmp_path / 'run'}"])
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
    assert len(lines) == 1 and lines[0].startswith("error: --val_data:") and "999" in lines[0]
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("extra,flag", [
    (["--model=bl_resnet50"], "--model"),
    (["--data_source=kaldi", "--train_data=feats.scp"], "--train_data"),
    (["--merge=concat", "--model=speech.bl_pyr_resnet22"], "--merge"),
    (["--widths=8,8,16"], "--widths"),
])
def test_bad_speech_flags(corpus, tmp_path, extra, flag):
    args = TINY + ["--data_source=audio", f"--train_data={corpus}/train",
                   f"--model_dir={tmp_path}"] + extra
    proc = run_module("train.speech", args)
    assert proc.returncode == 2
    lines = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
    assert len(lines) == 1 and flag in lines[0]


@pytest.mark.slow
def test_speech_demo_learns(tmp_path):
    proc = run_module("train.speech", ["--flagfile=configs/speech/demo.flags",
                                       f"--demo_dir={tmp_path / 'data'}",
                                       f"--model_dir={tmp_path / 'run'}", "--epochs=1",
                                       "--steps_per_epoch=80", "--noprogress"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = metrics(tmp_path / "run")[-1]
    assert record["val_top1"] >= 0.5, record  # 8 classes: chance is 0.125
