"""The trainer's parts in-process: schedules, weight decay selection, tfds and TFRecord inputs."""

import json
import math

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from tests.data.test_pipeline import write_tfrecords
from bl_keras.training import TrainConfig, Trainer
from bl_keras.training.schedules import WarmupSchedule
from bl_keras.training.trainer import is_decayed
from train.imagenet import ImageClassificationTask

TINY = dict(alpha=2, beta=2, stage_depths=[2, 2, 2, 2], stage_filters=[32, 32, 64, 64],
            stem_filters=8)


def test_cosine_schedule_with_warmup():
    schedule = WarmupSchedule(0.4, total_steps=110, warmup_steps=10)
    assert float(schedule(0)) == 0.0
    assert float(schedule(5)) == pytest.approx(0.2)
    assert float(schedule(10)) == pytest.approx(0.4)
    assert float(schedule(60)) == pytest.approx(0.2, abs=1e-6)  # half-way through the cosine
    assert float(schedule(110)) == pytest.approx(0.0, abs=1e-7)
    steps = np.arange(10, 111)
    rates = np.array([float(schedule(s)) for s in steps])
    expected = 0.2 * (1 + np.cos(math.pi * (steps - 10) / 100))
    np.testing.assert_allclose(rates, expected, atol=1e-6)


def test_halving_schedule_of_the_speech_recipe():
    schedule = WarmupSchedule(0.03, total_steps=160, kind="halving", steps_per_epoch=10,
                              halving_start_epoch=10)
    assert float(schedule(0)) == pytest.approx(0.03)  # epoch 1
    assert float(schedule(89)) == pytest.approx(0.03)  # epoch 9
    assert float(schedule(90)) == pytest.approx(0.015)  # epoch 10: first halving
    assert float(schedule(159)) == pytest.approx(0.03 / 2 ** 7)  # epoch 16


def test_weight_decay_applies_to_kernels_only_by_default():
    from bl_keras import models

    model = models.bl_resnet50(classes=3, **TINY)
    decayed = [v.path for v in model.trainable_variables if is_decayed(v, False)]
    assert decayed and all(p.endswith("kernel") for p in decayed)
    assert not any("gamma" in p or "beta" in p or "bias" in p for p in decayed)
    assert all(is_decayed(v, True) for v in model.trainable_variables)


def _train(task, tmp_path, **overrides):
    config = TrainConfig(model_dir=str(tmp_path), strategy="one_device", batch_size=8,
                         eval_batch_size=8, epochs=1, steps_per_epoch=2, eval_steps=2,
                         lr=0.1, progress=False, checkpoint_every=100, **overrides)
    trainer = Trainer(task, config, tf.distribute.OneDeviceStrategy("/cpu:0"))
    record = trainer.train()
    return trainer, record


def test_tfds_imagenet_under_mock_data_trains(tmp_path):
    (tmp_path / "tfds").mkdir()
    with tfds.testing.mock_data(num_examples=24):
        task = ImageClassificationTask("bl_resnet50", TINY, "tfds", str(tmp_path / "tfds"),
                                       image_size=32, rotation_degrees=0.0)
        trainer, record = _train(task, tmp_path / "run")
    assert task.num_classes == 1000 and task.num_train_examples == 24
    assert trainer.global_step == 2 and record["step"] == 2
    assert np.isfinite(record["train_loss"]) and record["val_top1"] >= 0.0
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["epoch"] == 1


def test_tfrecord_shards_train_with_zero_based_labels(tmp_path):
    data = tmp_path / "records"
    data.mkdir()
    write_tfrecords(data, "train", num_shards=2, per_shard=6)
    write_tfrecords(data, "validation", num_shards=1, per_shard=6)
    task = ImageClassificationTask("resnet50", dict(stage_depths=[1, 1, 1, 1],
                                                    stage_filters=[32, 32, 64, 64],
                                                    stem_filters=8),
                                   "tfrecord", str(data), image_size=32, rotation_degrees=10.0,
                                   num_classes=3)
    trainer, record = _train(task, tmp_path / "run", label_smoothing=0.1)
    assert task.num_train_examples == 12 and task.num_classes == 3
    assert trainer.model.output_shape == (None, 3)
    assert trainer.global_step == 2 and np.isfinite(record["train_loss"])
    assert trainer.evaluate()["images"] == 6  # the whole validation shard, remainder kept


@pytest.mark.parametrize("overrides", [dict(precision="mixed_bfloat16"),
                                       dict(precision="mixed_float16"),
                                       dict(jit_compile=True, clip_global_norm=1.0)],
                         ids=["bfloat16", "float16-loss-scaling", "xla-clipping"])
def test_precisions_xla_and_clipping_train(tmp_path, overrides):
    data = tmp_path / "records"
    data.mkdir()
    write_tfrecords(data, "train", num_shards=1, per_shard=12)
    write_tfrecords(data, "validation", num_shards=1, per_shard=4)
    task = ImageClassificationTask("bl_resnet50", TINY, "tfrecord", str(data), image_size=32,
                                   rotation_degrees=0.0, num_classes=3)
    trainer, record = _train(task, tmp_path / "run", **overrides)
    assert trainer.global_step == 2
    assert np.isfinite(record["train_loss"]) and np.isfinite(record["val_loss"])
    if "precision" in overrides:
        assert trainer.model.get_layer("layer1").compute_dtype == overrides["precision"][6:]
        assert trainer.model.output.dtype == "float32"  # logits stay float32


def test_train_config_checks_every_option_and_names_the_bad_one():
    from bl_keras.training import ConfigError

    assert TrainConfig(model_dir="x", batch_size=64).eval_batch_size == 64
    for bad, flag in ((dict(batch_size=0), "--batch_size"), (dict(strategy="gpu"), "--strategy"),
                      (dict(weight_decay=-1e-4), "--weight_decay"), (dict(model_dir=""),
                      "--model_dir"), (dict(warmup_epochs=3, epochs=2), "--warmup_epochs"),
                      (dict(label_smoothing=1.0), "--label_smoothing")):
        with pytest.raises(ConfigError, match=flag):
            TrainConfig(**dict(dict(model_dir="x"), **bad))
