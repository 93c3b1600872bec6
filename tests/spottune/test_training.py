"""`python -m train.spottune`: every method on the shared trainer (tiny generated data: pretrain
on two classes, transfer to the other two), what each trains and keeps frozen (bitwise), the
side-by-side summary, a killed run that resumes, and the start-up checks of its flags."""

import json

import numpy as np
import pytest

from bl_keras import models
from bl_keras.saving import load_model
from tests.train.helpers import (fingerprint_line, kill_after_first_checkpoint, metrics,
                                 popen_module, run_module, tiny_data)

DATA = ["--data_source=imagefolder", "--image_size=32", "--batch_size=8", "--noprogress",
        "--eval_crop_fraction=1.0", "--min_crop_area=0.5", "--color_jitter=0",
        "--lr=0.05", "--lr_batch_reference=8", "--agent=resnet8", "--classes=2,3"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return tiny_data(tmp_path_factory.mktemp("data"), classes=4, train=8, val=4, size=32)


@pytest.fixture(scope="module")
def runs(data, tmp_path_factory):
    """--method=all: pretraining on classes 0,1, then the four methods on 2,3."""
    root = tmp_path_factory.mktemp("spottune")
    proc = run_module("train.spottune", [
        *DATA, f"--data_dir={data}", f"--model_dir={root}", "--method=all",
        "--pretrain_model=cifar_resnet20", "--pretrain_classes=0,1", "--epochs=1",
        "--steps_per_epoch=2", "--methods=spottune,global,finetune,feature_extractor",
        "--global_blocks=3"])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return root, proc.stdout


def _weights(model):
    return {v.path: v.numpy() for v in model.weights}


def test_all_methods_run_and_are_summarised(runs):
    root, stdout = runs
    summary = json.loads((root / "summary.json").read_text())
    assert summary["chance"] == 0.5
    assert list(summary["methods"]) == ["spottune", "global", "finetune", "feature_extractor"]
    backbone = models.get("cifar_resnet20", classes=2, classifier_activation=None)
    from bl_keras import profiling

    full = profiling.count_macs(backbone, (32, 32, 3))
    for name, result in summary["methods"].items():
        assert result["images"] == 8 and 0 <= result["top1"] <= 1
        if name in ("spottune", "global"):
            assert 0 <= result["fine_tuned_mean"] <= 9 and len(result["fine_tune_share"]) == 9
            assert result["macs"] == full + 12_240_000  # one backbone pass + the agent
        else:
            assert result["macs"] == full
    assert "chance" in stdout and "feature_extractor" in stdout
    assert (root / "fine_tune_share.png").stat().st_size > 10_000
    record = metrics(root / "spottune")[-1]
    assert record["step"] == 2 and 0 <= record["val_fine_tuned"] <= 9
    config = json.loads((root / "spottune" / "config.json").read_text())
    assert config["model"]["method"] == "spottune" and config["model"]["classes"] == 2


def test_frozen_copies_stay_bitwise_and_fine_tuned_ones_move(runs):
    root, _ = runs
    pretrained = load_model(root / "pretrain" / "model.keras")
    start = [w for w in pretrained.get_weights()]
    network = load_model(root / "spottune" / "model.keras")
    for a, b in zip(network.frozen.get_weights(), start):
        np.testing.assert_array_equal(a, b)
    blocks = models.residual_blocks(network.tuned)
    reference = {b.name: b for b in models.residual_blocks(pretrained)}
    moved = [not all(np.array_equal(v.numpy(), w.numpy()) for v, w in
                     zip(block.trainable_weights, reference[block.name].trainable_weights))
             for block in blocks]
    assert all(moved)  # every fine-tuned copy received gradients (masked execution)

    # The feature extractor: everything but the new head bitwise the pretrained network's.
    extractor = load_model(root / "feature_extractor" / "model.keras")
    for a, b in zip(extractor.get_weights()[:-2], start[:-2]):
        np.testing.assert_array_equal(a, b)
    finetuned = load_model(root / "finetune" / "model.keras")
    assert not np.array_equal(finetuned.get_weights()[0], start[0])


@pytest.mark.slow  # ~1 min: a run killed after its first checkpoint, then resumed
def test_killed_spottune_run_resumes(runs, data, tmp_path):
    root, _ = runs
    args = [*DATA, f"--data_dir={data}", f"--model_dir={tmp_path}", "--method=spottune",
            f"--pretrained={root / 'pretrain'}", "--epochs=2", "--steps_per_epoch=3",
            "--checkpoint_every=1"]
    killed_at = kill_after_first_checkpoint(popen_module("train.spottune", args), tmp_path)
    proc = run_module("train.spottune", args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"at step {killed_at}" in proc.stdout
    assert fingerprint_line(proc.stdout).startswith("global_step=6 ")


@pytest.fixture(scope="module")
def pretrained_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("pretrained") / "cifar_resnet20.keras"
    models.get("cifar_resnet20", classes=2, classifier_activation=None).save(path)
    return path


@pytest.mark.parametrize("extra,message", [
    ([], "--pretrained: required"),
    (["--pretrained=nowhere.keras"], "--pretrained: no such .keras file"),
    (["--pretrained=PRETRAINED", "--train_splits=train,test"], "--train_splits: expected"),
    (["--pretrained=PRETRAINED", "--model=resnet50"], "--model: SpotTune's network comes"),
    (["--pretrained=PRETRAINED", "--classes=2,x"], "--classes: expected class indices"),
    (["--pretrained=PRETRAINED", "--classes=2,7"], "classes [2, 7] outside the source's 4"),
    (["--pretrained=PRETRAINED", "--temperature=0"], "--temperature: must be > 0"),
    (["--method=all"], "--pretrain_model: a registry model is required"),
])
def test_bad_spottune_flags_are_one_line_errors(data, pretrained_file, tmp_path, extra,
                                                message):
    extra = [arg.replace("PRETRAINED", str(pretrained_file)) for arg in extra]
    proc = run_module("train.spottune", [*DATA, f"--data_dir={data}",
                                         f"--model_dir={tmp_path / 'run'}", *extra])
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert message in proc.stderr


CHECK_FLAGFILES = """
import glob, json
from absl import flags
from train import spottune
from train import flags as train_flags
checked = {}
for path in sorted(glob.glob("configs/spottune/*.flags")):
    flags.FLAGS.unparse_flags()
    flags.FLAGS(["train", "--flagfile=" + path, "--model_dir=x"])
    config = train_flags.train_config()
    F = flags.FLAGS
    checked[path] = dict(method=F.method, epochs=config.epochs, lr=config.lr,
                         optimizer=config.optimizer, steps=list(config.step_epochs),
                         batch=config.batch_size, agent_lr_factor=F.agent_lr_factor,
                         agent_weight_decay=F.agent_weight_decay, splits=F.train_splits,
                         nesterov=config.nesterov, classes=F.classes,
                         pretrain_classes=F.pretrain_classes, source=F.data_source)
print(json.dumps(checked))
"""


def test_spottune_flagfiles_parse_to_the_authors_recipe():
    import subprocess
    import sys

    from tests.train.helpers import REPO

    done = subprocess.run([sys.executable, "-c", CHECK_FLAGFILES], cwd=REPO,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    checked = json.loads(done.stdout.strip().splitlines()[-1])
    decathlon = checked["configs/spottune/decathlon_resnet26.flags"]
    assert decathlon == dict(method="spottune", epochs=110, lr=0.1, optimizer="sgd", steps=[40],
                             batch=128, agent_lr_factor=0.1, agent_weight_decay=1e-3,
                             splits=["train", "val"], nesterov=False, classes=None,
                             pretrain_classes=None, source="decathlon")
    demo = checked["configs/spottune/demo.flags"]
    assert demo["method"] == "all" and demo["epochs"] == 20
    fashion = checked["configs/spottune/fashion_mnist.flags"]
    assert fashion["source"] == "idx" and fashion["method"] == "all"
    assert fashion["pretrain_classes"] == ["0", "1", "2", "3", "4"]
    assert fashion["classes"] == ["5", "6", "7", "8", "9"]
