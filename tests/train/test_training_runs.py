"""Whole runs of `python -m train.imagenet`: outputs, evaluation, resumption, divergence,
corrupt inputs, and two workers agreeing."""

import json
import pathlib
import socket

import numpy as np
import pytest

from tests.train.helpers import (fingerprint_line, kill_after_first_checkpoint, metrics,
                                 popen_module, run_module, tiny_data, train_args)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return tiny_data(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def finished_run(data, tmp_path_factory):
    model_dir = tmp_path_factory.mktemp("run")
    proc = run_module("train.imagenet", train_args(data, model_dir, "--checkpoint_every=3"))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return model_dir, proc.stdout


def test_run_writes_metrics_models_and_fingerprint(finished_run):
    model_dir, output = finished_run
    records = metrics(model_dir)
    assert [r["epoch"] for r in records] == [1, 2]
    assert [r["step"] for r in records] == [6, 12]  # 48 images // 8
    for record in records:
        for key in ("lr", "train_loss", "train_top1", "train_top5", "images_per_sec",
                    "val_loss", "val_top1", "val_top5", "skipped_images"):
            assert key in record
    assert (model_dir / "best.keras").exists() and (model_dir / "model.keras").exists()
    assert list((model_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert fingerprint_line(output).startswith("global_step=12 weights_fingerprint=")


def test_eval_mode_on_keras_file_and_checkpoint(finished_run, data):
    model_dir, _ = finished_run
    final = metrics(model_dir)[-1]
    for source in (model_dir / "model.keras", model_dir / "checkpoints"):
        proc = run_module("train.imagenet", train_args(data, model_dir, "--mode=eval",
                                                       f"--eval_from={source}"))
        assert proc.returncode == 0, proc.stderr[-3000:]
        result = json.loads([l for l in proc.stdout.splitlines() if l.startswith("{")][-1])
        assert result["images"] == 24 and result["images_per_sec"] > 0
        # The last checkpoint and model.keras hold the weights of the last epoch's evaluation.
        assert result["top1"] == pytest.approx(final["val_top1"], abs=1e-6)


def test_killed_run_resumes_with_the_same_schedule(data, tmp_path, finished_run):
    reference_dir, reference_output = finished_run
    model_dir = tmp_path / "killed"
    args = train_args(data, model_dir, "--checkpoint_every=3")
    killed_at = kill_after_first_checkpoint(popen_module("train.imagenet", args), model_dir)
    assert 0 < killed_at < 12

    resumed = run_module("train.imagenet", args)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"at step {killed_at}" in resumed.stdout
    assert fingerprint_line(resumed.stdout).startswith("global_step=12 ")
    # Same steps, same learning rates as the uninterrupted run.
    ref = {r["step"]: r["lr"] for r in metrics(reference_dir)}
    got = {r["step"]: r["lr"] for r in metrics(model_dir)}
    assert got[12] == ref[12]
    for step in got:
        assert got[step] == ref[step]
    # The input stream resumed where it stopped: the weights end where the uninterrupted run's do.
    assert fingerprint_line(resumed.stdout) == fingerprint_line(reference_output)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(data, tmp_path):
    model_dir = tmp_path / "nan"
    proc = run_module("train.imagenet", train_args(data, model_dir, "--lr=1e30",
                                                   "--checkpoint_every=1", "--weight_decay=0"))
    assert proc.returncode == 1
    assert "Loss is" in proc.stderr and "last good checkpoint" in proc.stderr
    import tensorflow as tf

    latest = tf.train.latest_checkpoint(str(model_dir / "checkpoints"))
    assert latest is not None
    reader = tf.train.load_checkpoint(latest)
    for name in reader.get_variable_to_shape_map():
        value = reader.get_tensor(name)
        if isinstance(value, np.ndarray) and value.dtype.kind == "f":
            assert np.all(np.isfinite(value)), name


def test_corrupt_and_misnamed_images_do_not_stop_training(tmp_path):
    data = tiny_data(tmp_path / "data")
    class_dir = sorted((pathlib.Path(data) / "train").iterdir())[0]
    (class_dir / "corrupt.JPEG").write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    png = next(class_dir.glob("*.png")).read_bytes()
    (class_dir / "actually_png.JPEG").write_bytes(png)
    model_dir = tmp_path / "run"
    proc = run_module("train.imagenet", train_args(data, model_dir, "--epochs=1",
                                                   "--shuffle_buffer=100"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "corrupt.JPEG" in proc.stderr
    record = metrics(model_dir)[0]
    assert record["skipped_images"] >= 1
    assert record["step"] == 50 // 8  # 48 + 2 files listed, the corrupt one skipped in-stream


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_two_workers_agree(data, tmp_path):
    ports = _free_ports(2)
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    model_dir = tmp_path / "mw"
    procs = []
    for index in range(2):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        procs.append(popen_module("train.imagenet", train_args(
            data, model_dir, "--strategy=multi_worker", "--epochs=1", "--steps_per_epoch=3"),
            TF_CONFIG=tf_config))
    outputs = [p.communicate(timeout=900)[0] for p in procs]
    for p, out in zip(procs, outputs):
        assert p.returncode == 0, out[-3000:]
    lines = [fingerprint_line(out) for out in outputs]
    assert lines[0] == lines[1]
    assert lines[0].startswith("global_step=3 ")


@pytest.mark.slow
def test_mirrored_replicas_train_like_one_device(data, tmp_path):
    """Two mirrored CPU replicas with synchronised BN take the same steps as one device: the
    gradient sum, the per-replica weight decay share and the BN statistics all add up."""
    import keras

    common = ["--epochs=1", "--steps_per_epoch=3", "--sync_bn", "--weight_decay=1e-3"]
    runs = {}
    for name, extra in (("one", ["--strategy=one_device"]),
                        ("mirrored", ["--strategy=mirrored", "--cpu_devices=2"])):
        model_dir = tmp_path / name
        proc = run_module("train.imagenet", train_args(data, model_dir, *common, *extra))
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
        replicas = 2 if name == "mirrored" else 1
        assert f"on {replicas} replica(s)" in proc.stdout
        assert fingerprint_line(proc.stdout).startswith("global_step=3 ")
        runs[name] = keras.models.load_model(model_dir / "model.keras", compile=False)
    for a, b in zip(runs["one"].weights, runs["mirrored"].weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=2e-4, err_msg=a.path)
