"""`python -m train.detection`: a RetinaNet on a bL backbone trains on the shared trainer,
evaluates mAP each epoch, writes a picture, resumes after kill -9, starts from a classifier's
weights, reads tfds VOC (mock data), and names bad flags."""

import json

import numpy as np
import pytest
import tensorflow_datasets as tfds

from bl_keras import models
from bl_keras.detection import report
from bl_keras.saving import load_model
from tests.train.helpers import (fingerprint_line, kill_after_first_checkpoint, metrics,
                                 popen_module, run_module)

pytest.importorskip("keras_hub")

TINY = ["--model=bl_resnet50", "--alpha=2", "--beta=2", "--stage_depths=2,2,2,2",
        "--stage_filters=16,32,32,64", "--stem_filters=8", "--image_size=64,64",
        "--min_level=3", "--max_level=5", "--anchor_size=2", "--head_convs=1",
        "--batch_size=8", "--lr=0.01", "--lr_batch_reference=8", "--lr_schedule=cosine",
        "--warmup_epochs=0", "--noprogress"]
SHAPES = ["--data_source=shapes", "--shapes_train=32", "--shapes_val=16"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("detection")
    proc = run_module("train.detection", [*TINY, *SHAPES, f"--model_dir={root}", "--epochs=2",
                                          "--picture=4"])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return root, proc.stdout


def test_trains_and_reports_map_each_epoch(run):
    root, stdout = run
    records = metrics(root)
    assert [r["epoch"] for r in records] == [1, 2] and records[-1]["step"] == 8
    for record in records:
        assert np.isfinite(record["train_loss"]) and record["train_loss"] > 0
        assert 0.0 <= record["val_map"] <= record["val_map50"] <= 1.0
        assert record["val_detections_per_image"] <= 100
        assert "train_top1" not in record and "val_top1" not in record
    assert "trivial detector" in stdout and "detector: mAP@0.5" in stdout
    assert (root / "detections.png").stat().st_size > 10_000
    config = json.loads((root / "config.json").read_text())
    assert config["model"]["task"] == "detection" and config["model"]["anchor_size"] == 2.0


def test_model_file_is_the_trained_detector(run):
    root, _ = run
    detector = load_model(str(root / "model.keras"))  # safe mode
    images = np.random.default_rng(0).normal(size=(2, 64, 64, 3)).astype("float32")
    outputs = detector(images, training=False)
    assert outputs["cls_logits"].shape[-1] == 4
    assert detector.backbone.image_encoder.model_name == "bl_resnet50"
    assert (root / "best.keras").exists()


def test_eval_mode_reproduces_the_last_map(run):
    root, _ = run
    proc = run_module("train.detection", [*TINY, *SHAPES, f"--model_dir={root}",
                                          "--mode=eval"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads([l for l in proc.stdout.splitlines() if l.startswith("{")][-1])
    assert result["map50"] == pytest.approx(metrics(root)[-1]["val_map50"], abs=1e-6)
    assert result["images"] == 16


def test_killed_run_resumes(tmp_path):
    args = [*TINY, *SHAPES, f"--model_dir={tmp_path}", "--epochs=2", "--checkpoint_every=1",
            "--noeval", "--head_group_norm"]
    killed_at = kill_after_first_checkpoint(popen_module("train.detection", args), tmp_path)
    proc = run_module("train.detection", args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"at step {killed_at}" in proc.stdout
    assert fingerprint_line(proc.stdout).startswith("global_step=8 ")


def test_backbone_starts_from_a_classifier(tmp_path):
    options = dict(alpha=2, beta=2, stage_depths=(2, 2, 2, 2), stage_filters=(16, 32, 32, 64),
                   stem_filters=8)
    classifier = models.get("bl_resnet50", classes=3, **options)
    path = tmp_path / "classifier.keras"
    classifier.save(path)
    proc = run_module("train.detection", [
        *TINY, *SHAPES, f"--model_dir={tmp_path / 'run'}", "--epochs=1", "--steps_per_epoch=1",
        f"--backbone_weights={path}", "--noeval", "--lr=0"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    detector = load_model(str(tmp_path / "run" / "model.keras"))
    encoder = detector.backbone.image_encoder.features
    trained = models.features(classifier)
    # lr 0: the backbone's kernels are the classifier's (BatchNorm statistics moved one step)
    kernels = [(a, b) for a, b in zip(encoder.weights, trained.weights) if "kernel" in a.path]
    assert kernels and all(np.array_equal(a.numpy(), b.numpy()) for a, b in kernels)


@pytest.mark.parametrize("extra,message", [
    (["--model=resnet51"], "--model: Unknown model 'resnet51'"),
    (["--image_size=64"], "--image_size: expected 2 positive integers"),
    (["--data_source=tfds"], "--data_dir: required for --data_source=tfds"),
    (["--backbone_weights=nowhere.keras"], "--backbone_weights: no such file"),
    (["--min_level=6"], "--min_level: need 2 <= --min_level <= 5"),
    (["--image_size=64,48"], "--image_size: generated shapes are square"),
    (["--data_source=tfds", "--data_dir=DATA", "--eval_set=voc/2007"],
     "--eval_set: expected name:split"),
])
def test_bad_flags_are_one_line_errors(tmp_path, extra, message):
    extra = [arg.replace("DATA", str(tmp_path)) for arg in extra]
    proc = run_module("train.detection", [*TINY, *SHAPES, f"--model_dir={tmp_path / 'run'}",
                                          *extra])
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert message in proc.stderr


def test_voc_under_mock_data_trains_and_evaluates(tmp_path):
    """The tfds path in-process (tfds' mock data patches this process only)."""
    from bl_keras.detection.task import DetectionSource, DetectionTask, DetectorOptions
    from bl_keras.training import TrainConfig
    from bl_keras.training.trainer import Trainer

    source = DetectionSource(kind="tfds", data_dir=str(tmp_path / "tfds"),
                             train_sets=("voc/2007:train", "voc/2012:train"),
                             eval_set="voc/2007:test", max_boxes=20)
    config = TrainConfig(model_dir=str(tmp_path / "run"), batch_size=4, epochs=1,
                         steps_per_epoch=2, lr=0.01, progress=False)
    with tfds.testing.mock_data(num_examples=6):
        task = DetectionTask("resnet50", dict(stage_depths=(1, 1, 1, 1),
                                              stage_filters=(16, 32, 32, 64), stem_filters=8),
                             source, (64, 96), DetectorOptions(max_level=5, head_convs=1))
        assert (task.num_train_examples, task.num_classes) == (12, 20)
        trainer = Trainer(task, config)
        record = trainer.train()
    assert record["step"] == 2 and np.isfinite(record["train_loss"])
    assert 0.0 <= record["val_map50"] <= 1.0


def test_trivial_detector_by_hand():
    truth = [{"boxes": np.array([[0, 0, 10, 10], [10, 10, 30, 30]], float),
              "classes": np.array([0, 1]), "ignore": np.array([False, False])},
             {"boxes": np.array([[0, 0, 20, 20], [5, 5, 6, 6]], float),
              "classes": np.array([0, 1]), "ignore": np.array([False, True])}]
    guess = report.trivial_detector(truth, num_classes=3)
    np.testing.assert_array_equal(guess["classes"], [0, 1])  # class 2 never seen
    np.testing.assert_array_equal(guess["boxes"], [[0, 0, 15, 15], [10, 10, 30, 30]])
    np.testing.assert_allclose(guess["scores"], [2 / 3, 1 / 3])


def test_ground_truth_drops_padding_and_marks_ignored_objects():
    from bl_keras.detection.task import ground_truth

    targets = {"boxes": np.array([[[1, 2, 3, 4], [5, 6, 7, 8], [-1, -1, -1, -1]]], "float32"),
               "labels": np.array([[2, -2, -1]]), "classes": np.array([[2, 7, -1]])}
    (image,) = ground_truth(targets)
    np.testing.assert_array_equal(image["boxes"], [[1, 2, 3, 4], [5, 6, 7, 8]])
    np.testing.assert_array_equal(image["classes"], [2, 7])
    np.testing.assert_array_equal(image["ignore"], [False, True])


def test_two_replicas_train_the_detector(tmp_path):
    """The per-image loss under MirroredStrategy on two logical CPUs (as on two GPUs), and the
    mAP evaluation beside it."""
    proc = run_module("train.detection", [
        *TINY, *SHAPES, f"--model_dir={tmp_path}", "--epochs=1", "--steps_per_epoch=2",
        "--strategy=mirrored", "--cpu_devices=2"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "on 2 replica(s)" in proc.stdout
    record = metrics(tmp_path)[-1]
    assert np.isfinite(record["train_loss"]) and 0.0 <= record["val_map50"] <= 1.0
