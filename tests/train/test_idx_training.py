"""The trainers on MNIST-format (IDX) files: two-step runs of train.imagenet and
train.mutualnet at 28 px, the start-up check of a broken file, and MutualNet's query table
refusing a tfds set it cannot read."""

import json

import pytest

from tests.data.idx_files import IMAGES, write_idx_set
from tests.train.helpers import TINY_MODEL, fingerprint_line, metrics, run_module

COMMON = ["--data_source=idx", "--image_size=28", "--batch_size=8", "--epochs=1",
          "--steps_per_epoch=2", "--noprogress", "--eval_crop_fraction=1.0",
          "--min_crop_area=0.35"]


@pytest.fixture(scope="module")
def idx_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("fashion")
    write_idx_set(directory, train=24, test=10, classes=4, compressed=True)
    return directory


def test_imagenet_trainer_runs_on_idx_files(idx_dir, tmp_path):
    proc = run_module("train.imagenet", [*TINY_MODEL, *COMMON, f"--data_dir={idx_dir}",
                                         f"--model_dir={tmp_path}"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert fingerprint_line(proc.stdout).startswith("global_step=2 ")
    (record,) = metrics(tmp_path)
    assert record["step"] == 2 and record["skipped_images"] == 0
    assert 0 <= record["val_top1"] <= 1
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model"]["classes"] == 4  # the largest train label + 1
    assert config["run"]["data_source"] == "idx"


@pytest.mark.slow  # ~30-45 s on 2 cores: calibration and evaluation of every table row
def test_mutualnet_trainer_and_query_table_run_on_idx_files(idx_dir, tmp_path):
    proc = run_module("train.mutualnet", [
        "--model=mobilenet_v1", "--base_width=0.25", "--resolutions=28,20", *COMMON,
        f"--data_dir={idx_dir}", f"--model_dir={tmp_path}", "--query",
        "--query_width_step=0.75", "--calibration_images=16", "--color_jitter=0"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert fingerprint_line(proc.stdout).startswith("global_step=2 ")
    assert "Query table:" in proc.stdout


def test_a_truncated_idx_file_stops_the_trainer_at_start_up(idx_dir, tmp_path):
    broken = tmp_path / "broken"
    write_idx_set(broken, compressed=False)
    images = broken / f"train-{IMAGES}"
    images.write_bytes(images.read_bytes()[:-1])
    proc = run_module("train.imagenet", [*TINY_MODEL, *COMMON, f"--data_dir={broken}",
                                         f"--model_dir={tmp_path / 'run'}"])
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    (line,) = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
    assert "--data_dir" in line and "training split" in line
    assert "train-images-idx3-ubyte: truncated" in line


def test_mutualnet_query_refuses_a_tfds_set_other_than_imagenet2012(tmp_path):
    proc = run_module("train.mutualnet", [
        "--model=mobilenet_v1", "--data_source=tfds", "--tfds_name=fashion_mnist",
        f"--data_dir={tmp_path}", f"--model_dir={tmp_path / 'run'}", "--query"])
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    (line,) = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
    assert "--query" in line and "--tfds_name=fashion_mnist" in line
    assert not (tmp_path / "run").exists()
