"""`python -m train.blockdrop`: both stages on the shared trainer (tiny generated data), a killed
curriculum run that resumes, and the start-up checks of its flags."""

import json

import pytest

from bl_keras import models
from tests.train.helpers import (fingerprint_line, kill_after_first_checkpoint, metrics,
                                 popen_module, run_module, tiny_data)

DATA = ["--data_source=imagefolder", "--image_size=32", "--batch_size=8", "--noprogress",
        "--eval_crop_fraction=1.0", "--min_crop_area=0.5", "--color_jitter=0",
        "--optimizer=adam", "--weight_decay=0", "--lr=1e-3", "--lr_batch_reference=8",
        "--lr_schedule=step", "--policy=resnet8"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return tiny_data(tmp_path_factory.mktemp("data"), classes=4, train=8, val=4, size=32)


@pytest.fixture(scope="module")
def backbone(tmp_path_factory):
    path = tmp_path_factory.mktemp("backbone") / "cifar_resnet20.keras"
    models.get("cifar_resnet20", classes=4, classifier_activation=None).save(path)
    return path


def test_curriculum_then_finetune(data, backbone, tmp_path):
    curriculum = tmp_path / "curriculum"
    proc = run_module("train.blockdrop", [
        *DATA, f"--data_dir={data}", f"--model_dir={curriculum}", "--stage=curriculum",
        f"--backbone={backbone}", "--epochs=2", "--steps_per_epoch=2"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = metrics(curriculum)
    assert [r["epoch"] for r in records] == [1, 2]
    for record in records:
        # the curriculum forces all blocks but the last e + 1 on: 9 blocks, >= 7 run
        assert 7 <= record["train_blocks"] <= 9 and 7 <= record["val_blocks"] <= 9
        assert "train_reward" in record and "val_reward" in record
    config = json.loads((curriculum / "config.json").read_text())
    assert config["model"]["stage"] == "curriculum" and config["run"]["gamma"] == 1.0

    finetune = tmp_path / "finetune"
    proc = run_module("train.blockdrop", [
        *DATA, f"--data_dir={data}", f"--model_dir={finetune}", "--stage=finetune",
        f"--init_from={curriculum}", "--epochs=1", "--steps_per_epoch=2", "--gamma=10"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    (record,) = metrics(finetune)
    assert 0 <= record["val_blocks"] <= 9 and record["step"] == 2

    # Both stages' networks through the evaluation command, compared with the backbone.
    plot = tmp_path / "blocks.png"
    proc = run_module("bl_keras.blockdrop.evaluate", [
        f"--model={curriculum / 'model.keras'}", f"--model={finetune / 'model.keras'}",
        "--labels=curriculum,gamma 10", f"--backbone={backbone}", "--data_source=imagefolder",
        f"--data_dir={data}", "--image_size=32", "--batch_size=8", f"--plot={plot}", "--json"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    summaries = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [s["label"] for s in summaries] == ["curriculum", "gamma 10"]
    for summary in summaries:
        assert summary["images"] == 16 and summary["num_blocks"] == 9
        assert summary["chance"] == 0.25 and 0 <= summary["top1"] <= 1
        assert summary["policy_macs"] < summary["macs_mean"]
        assert summary["macs_mean"] <= summary["full_macs"] + summary["policy_macs"]
        assert 1 <= summary["distinct_policies"] <= 16
    assert plot.stat().st_size > 10_000


@pytest.fixture(scope="module")
def network(tmp_path_factory, backbone):
    """A BlockDrop network as the curriculum stage leaves it (where fine-tuning starts)."""
    from bl_keras import blockdrop
    from bl_keras.saving import load_model

    path = tmp_path_factory.mktemp("network") / "blockdrop.keras"
    blockdrop.BlockDropNetwork(load_model(backbone), blockdrop.cifar_policy(9)).save(path)
    return path


@pytest.mark.slow  # ~1 min each: a run killed after its first checkpoint, then resumed
@pytest.mark.parametrize("stage", ["curriculum", "finetune"])
def test_killed_run_resumes(data, backbone, network, tmp_path, stage):
    source = (f"--backbone={backbone}" if stage == "curriculum" else f"--init_from={network}")
    args = [*DATA, f"--data_dir={data}", f"--model_dir={tmp_path}", f"--stage={stage}", source,
            "--epochs=2", "--steps_per_epoch=3", "--checkpoint_every=1"]
    killed_at = kill_after_first_checkpoint(popen_module("train.blockdrop", args), tmp_path)
    proc = run_module("train.blockdrop", args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"at step {killed_at}" in proc.stdout
    assert fingerprint_line(proc.stdout).startswith("global_step=6 ")


@pytest.mark.parametrize("extra,message", [
    (["--stage=curriculum"], "--backbone: required for --stage=curriculum"),
    (["--stage=finetune"], "--init_from: required for --stage=finetune"),
    (["--stage=curriculum", "--backbone=nowhere.keras"], "--backbone: no such .keras file"),
    (["--stage=curriculum", "--model=resnet50"], "--model: BlockDrop's network comes from"),
    (["--stage=all"], "--backbone_model: required for --stage=all"),
    (["--stage=curriculum", "--bound_alpha=0.3", "--backbone=BACKBONE"],
     "bound_alpha must be in [0.5, 1]"),
    (["--stage=finetune", "--policy_weights=resnet18.pth"],
     "--policy_weights: applies to --stage=curriculum"),
    (["--stage=curriculum", "--backbone=BACKBONE", "--policy_weights=nowhere.pth"],
     "--policy_weights: no such file: nowhere.pth"),
    (["--stage=curriculum", "--backbone=BACKBONE", "--policy_weights=BACKBONE"],
     "--policy_weights: policy_resnet8 is not the ResNet-10 policy"),
])
def test_bad_blockdrop_flags_are_one_line_errors(data, backbone, tmp_path, extra, message):
    extra = [arg.replace("BACKBONE", str(backbone)) for arg in extra]
    proc = run_module("train.blockdrop", [*DATA, f"--data_dir={data}",
                                          f"--model_dir={tmp_path / 'run'}", *extra])
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert message in proc.stderr


def test_a_backbone_of_other_classes_is_refused(data, tmp_path):
    other = tmp_path / "ten_classes.keras"
    models.get("cifar_resnet20", classes=10, classifier_activation=None).save(other)
    proc = run_module("train.blockdrop", [*DATA, f"--data_dir={data}",
                                          f"--model_dir={tmp_path / 'run'}",
                                          "--stage=curriculum", f"--backbone={other}"])
    assert proc.returncode == 2
    assert "classifies 10 classes, the data has 4" in proc.stderr


@pytest.mark.parametrize("name,classes", [("cifar10", 10), ("cifar100", 100)])
def test_curriculum_on_tfds_cifar_under_mock_data(tmp_path, name, classes):
    # In-process: mock_data patches tfds in this process only (random 32x32 PNGs per split).
    import tensorflow as tf
    import tensorflow_datasets as tfds

    from bl_keras.blockdrop.training import BlockDropRecipe
    from bl_keras.training import TrainConfig, Trainer
    from train.blockdrop import BlockDropTask

    source = tmp_path / "backbone.keras"
    models.get("cifar_resnet20", classes=classes, classifier_activation=None).save(source)
    (tmp_path / "tfds").mkdir()
    with tfds.testing.mock_data(num_examples=16):
        task = BlockDropTask(BlockDropRecipe("curriculum", 1.0, 0.8, 0.1, 0), str(source),
                             "resnet8", data_source="tfds", data_dir=str(tmp_path / "tfds"),
                             tfds_name=name, image_size=32, rotation_degrees=0.0,
                             color_jitter=0.0, min_crop_area=0.5, eval_crop_fraction=1.0)
        config = TrainConfig(model_dir=str(tmp_path / "run"), strategy="one_device",
                             batch_size=8, eval_batch_size=8, epochs=1, steps_per_epoch=2,
                             eval_steps=2, optimizer="adam", lr=1e-3, weight_decay=0.0,
                             progress=False, checkpoint_every=100)
        record = Trainer(task, config, tf.distribute.OneDeviceStrategy("/cpu:0")).train()
    assert (task.num_classes, task.num_train_examples) == (classes, 16)
    assert record["step"] == 2 and 0 <= record["val_top1"] <= 1
    # epoch 0 of the curriculum: the policy decides the last block only, the other 8 run
    assert 8 <= record["train_blocks"] <= 9 and 8 <= record["val_blocks"] <= 9


def test_all_stages_pipeline(data, tmp_path):
    # Backbone, curriculum (shortened epochs: one step each) and fine-tuning, then the summary.
    proc = run_module("train.blockdrop", [
        *DATA, f"--data_dir={data}", f"--model_dir={tmp_path}", "--stage=all",
        "--backbone_model=cifar_resnet20", "--backbone_epochs=1", "--steps_per_epoch=2",
        "--curriculum_epochs=3", "--curriculum_steps_per_epoch=1", "--finetune_epochs=1",
        "--finetune_gamma=5"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [r["step"] for r in metrics(tmp_path / "backbone")] == [2]
    assert [r["step"] for r in metrics(tmp_path / "curriculum")] == [1, 2, 3]
    assert [r["step"] for r in metrics(tmp_path / "finetune")] == [2]
    finetune = json.loads((tmp_path / "finetune" / "config.json").read_text())
    assert finetune["run"]["gamma"] == 5.0 and finetune["run"]["optimizer"] == "adam"
    assert "Full network: top-1 " in proc.stdout and "BlockDrop uses " in proc.stdout
