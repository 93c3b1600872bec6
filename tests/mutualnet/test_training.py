"""MutualNet training end to end on generated 2-pixel textures (32 px, `textures.py`): the
sandwich-rule run against the same network trained alone, BatchNorm calibration of a narrow
sub-network, the query table written after training, and flag errors. (Resumption is the
trainer's, tested in tests/train; the sub-network draws are a function of the step,
tested in test_sandwich.)"""

import json

import keras
import numpy as np
import pytest

from tests.mutualnet.textures import make_texture_dataset
from tests.train.helpers import fingerprint_line, metrics, run_module

MODEL = ["--model=mobilenet_v1", "--base_width=0.5"]


def train_args(data_dir, model_dir, *extra):
    return [*MODEL, "--data_source=imagefolder", f"--data_dir={data_dir}",
            f"--model_dir={model_dir}", "--image_size=32", "--resolutions=32,24,16",
            "--batch_size=16", "--epochs=16", "--lr=0.4", "--warmup_epochs=1", "--noprogress",
            "--eval_crop_fraction=1.0", "--min_crop_area=1.0", "--color_jitter=0",
            "--weight_decay=4e-5", *extra]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_texture_dataset(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def runs(data, tmp_path_factory):
    """The MutualNet run (with its query table) and the alone-trained run, same seed/steps."""
    root = tmp_path_factory.mktemp("runs")
    mutual = run_module("train.mutualnet", train_args(
        data, root / "mutual", "--query", "--query_width_step=0.25",
        "--calibration_images=160"))
    assert mutual.returncode == 0, mutual.stderr[-3000:]
    alone = run_module("train.mutualnet", train_args(data, root / "alone", "--nomutual"))
    assert alone.returncode == 0, alone.stderr[-3000:]
    return root, mutual, alone


@pytest.mark.slow
def test_mutual_learning_keeps_the_full_network_as_good_as_alone(runs):
    root, mutual, alone = runs
    mutual_top1 = metrics(root / "mutual")[-1]["val_top1"]
    alone_top1 = metrics(root / "alone")[-1]["val_top1"]
    print(f"full network val top-1: MutualNet {mutual_top1:.3f}, alone {alone_top1:.3f}")
    assert alone_top1 > 0.4, alone_top1  # 4 classes: chance 0.25
    assert mutual_top1 >= alone_top1 - 0.1
    # Same steps: 16 epochs x (256 // 16).
    for run in (mutual, alone):
        assert fingerprint_line(run.stdout).startswith("global_step=256 ")


@pytest.mark.slow
def test_query_table_full_configuration_beats_the_smallest(runs):
    root, _, _ = runs
    rows = json.loads((root / "mutual" / "query" / "query_table.json").read_text())
    if isinstance(rows, dict):
        rows = rows["rows"]
    assert {(r["width"], r["resolution"]) for r in rows} == {
        (w, r) for w in (1.0, 0.75, 0.5, 0.25) for r in (32, 24, 16)}
    table = {(r["width"], r["resolution"]): r for r in rows}
    full, smallest = table[(1.0, 32)], table[(0.25, 16)]
    print({k: round(v["top1"], 3) for k, v in table.items()})
    assert full["macs"] > 10 * smallest["macs"]
    assert full["top1"] >= smallest["top1"] + 0.15
    assert (root / "mutual" / "query" / "query_table.png").stat().st_size > 0


@pytest.mark.slow
def test_calibration_improves_a_narrow_subnetwork(runs, data):
    from bl_keras.data import build_dataset
    from bl_keras.slimmable.calibration import batch_norm_layers
    from bl_keras.slimmable.calibration_images import calibrate, training_augmentation

    root, _, _ = runs
    model = keras.models.load_model(root / "mutual" / "model.keras", compile=False)
    width, resolution = 0.25, 32

    def accuracy():
        correct = total = 0
        val = build_dataset("imagefolder", str(data), "val", training=False, batch_size=32,
                            image_size=resolution, seed=0, eval_crop_fraction=1.0).dataset
        for images, labels in val:
            logits = model(images, width=width, training=False)
            correct += int(np.sum(np.argmax(logits, -1) == labels.numpy()))
            total += len(labels)
        return correct / total

    before_stats = [bn.moving_mean.numpy().copy() for bn in batch_norm_layers(model)]
    before = accuracy()
    # Training images augmented as the run's were (whole-image crops, no jitter).
    used = calibrate(model, data, width, resolution, num_images=160,
                     augmentation=training_augmentation(1.0, 0.0))
    after = accuracy()
    print(f"0.25x-{resolution}: top-1 {before:.3f} before calibration, {after:.3f} after")
    assert used == 160
    changed = [not np.allclose(b, bn.moving_mean.numpy())
               for b, bn in zip(before_stats, batch_norm_layers(model))]
    assert all(changed)
    assert after >= before + 0.1


@pytest.mark.parametrize("flag, message", [
    ("--model=bl_resnet101", "--model: unknown slimmable model"),
    ("--resolutions=24,16", "--resolutions: the largest (24)"),
    ("--width_range=0.5,0.25", "--width_range: need 0 < min < max <= 1"),
    ("--merge=concat", "--merge: does not apply"),
    ("--alpha=2", "--alpha: does not apply to mobilenet_v1"),
    ("--sync_bn", "--sync_bn: slimmable BatchNorm"),
])
def test_bad_flags_are_one_line_errors(data, tmp_path, flag, message):
    proc = run_module("train.mutualnet", train_args(data, tmp_path / "run", flag))
    assert proc.returncode == 2
    assert message in proc.stderr, proc.stderr[-2000:]
