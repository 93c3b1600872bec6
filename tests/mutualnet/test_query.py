"""The MutualNet query table (library and CLI) and the export of one slimmable sub-network."""

import csv
import json
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from bl_keras import mutualnet, slimmable
from bl_keras.data.demo import make_demo_dataset
from bl_keras.export import __main__ as export_cli
from bl_keras.mutualnet import query
from bl_keras.slimmable.calibration import batch_norm_layers
from bl_keras.slimmable.calibration_images import calibrate

REPO = pathlib.Path(__file__).resolve().parents[2]
SIZE = 32
CLASSES = 4
FAST = dict(calibration_images=16, batch_size=8, eval_crop_fraction=1.0)


def small_slimmable(seed=0):
    keras.utils.set_random_seed(seed)
    # MobileNet v1: half the ops of v2, so half the tracing time.
    return slimmable.get("mobilenet_v1", classes=CLASSES, base_width=0.25,
                         classifier_activation=None)


def batch_norm_stats(model):
    return [keras.ops.convert_to_numpy(v) for layer in batch_norm_layers(model)
            for v in (layer.moving_mean, layer.moving_variance)]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    make_demo_dataset(str(root), num_classes=CLASSES, train_per_class=12, val_per_class=6,
                      image_size=SIZE, seed=0)
    return root


@pytest.fixture(scope="module")
def saved_model_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "model.keras"
    small_slimmable().save(path)
    return path


def start(module, *args):
    return subprocess.Popen([sys.executable, "-m", module, *map(str, args)], cwd=REPO,
                            env=dict(os.environ, PYTHONPATH=str(REPO)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process):
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr[-3000:]
    return stdout


@pytest.fixture(scope="module")
def commands(data_dir, saved_model_path, tmp_path_factory):
    """The query and export command lines, started together before the in-process tests so
    that they run alongside them (each spends ~10 s importing TensorFlow)."""
    out = tmp_path_factory.mktemp("commands")
    query_run = start(
        "bl_keras.mutualnet.query", "--model", saved_model_path, "--data", data_dir,
        "--width_range", "0.5,0.75", "--width_step", "0.25", "--resolutions", SIZE,
        "--calibration_images", 16, "--batch_size", 8, "--eval_crop_fraction", 1.0,
        "--latency_runs", 0, "--budget_macs", "1e9", "--out", out / "query")
    export_run = start(
        "bl_keras.export", "--model", saved_model_path, "--output", out / "serving" / "1",
        "--width", 0.5, "--image_size", SIZE, "--format", "saved_model",
        "--calibration_data", data_dir, "--calibration_images", 16)
    yield dict(out=out, query=query_run, export=export_run)
    for process in (query_run, export_run):
        if process.poll() is None:
            process.kill()
            process.communicate()


@pytest.fixture(scope="module")
def table(data_dir, commands):
    """query_table at 2 widths x 2 resolutions, and the model's BN statistics around it."""
    model = small_slimmable()
    before = batch_norm_stats(model)
    lines = []
    rows = mutualnet.query_table(model, str(data_dir), [1.0, 0.5], [SIZE, 24], latency_runs=2,
                             progress=lines.append, **FAST)
    return dict(model=model, rows=rows, before=before, after=batch_norm_stats(model),
                lines=lines)


def test_widths_grid():
    grid = mutualnet.widths_grid(0.25, 1.0, 0.05)
    assert len(grid) == 16
    assert grid[0] == 1.0 and grid[-1] == 0.25
    assert grid == sorted(grid, reverse=True)
    assert all(w == round(w, 2) for w in grid)
    assert mutualnet.widths_grid(0.35, 1.0, 0.05)[-1] == 0.35  # 0.65 / 0.05 = 12.999...
    assert mutualnet.widths_grid(0.5, 0.5, 0.1) == [0.5]
    with pytest.raises(ValueError, match="positive"):
        mutualnet.widths_grid(0.25, 1.0, 0.0)


def test_table_rows(table):
    rows, model = table["rows"], table["model"]
    assert [(row["width"], row["resolution"]) for row in rows] == [
        (1.0, SIZE), (0.5, SIZE), (1.0, 24), (0.5, 24)]
    assert all(set(row) == set(mutualnet.FIELDS) for row in rows)
    # Each MACs count traces the model: one ties the column to active_macs, the order the rest.
    assert rows[3]["macs"] == slimmable.active_macs(model, 0.5, 24)
    assert rows[0]["params"] == slimmable.active_params(model, 1.0) == rows[2]["params"]
    assert rows[1]["params"] == slimmable.active_params(model, 0.5) < rows[0]["params"]
    for middle in rows[1:3]:  # fewer MACs at a smaller width or resolution
        assert rows[3]["macs"] < middle["macs"] < rows[0]["macs"]
    for row in rows:
        assert isinstance(row["macs"], int) and isinstance(row["params"], int)
        assert 0.0 <= row["top1"] <= row["top5"] <= 1.0
        assert row["latency_ms"] > 0
        assert row["calibration_images"] == FAST["calibration_images"]
    assert len(table["lines"]) == 4


def test_table_restores_batch_norm_statistics(table):
    for before, after in zip(table["before"], table["after"]):
        np.testing.assert_array_equal(before, after)


def hand_rows():
    return [dict(width=w, resolution=r, macs=m, params=1, top1=t, top5=t, latency_ms=None,
                 calibration_images=1)
            for w, r, m, t in [(1.0, 224, 300, 0.72), (0.5, 224, 100, 0.60),
                               (1.0, 160, 150, 0.66), (0.75, 224, 170, 0.66),
                               (0.6, 192, 120, 0.58)]]


def test_best_under_and_pareto():
    rows = hand_rows()
    assert mutualnet.best_under(rows, 1000)["macs"] == 300
    assert mutualnet.best_under(rows, 200)["macs"] == 150  # ties on top-1: fewer MACs
    assert mutualnet.best_under(rows, 149)["macs"] == 100
    assert mutualnet.best_under(rows, 100)["macs"] == 100  # the budget is inclusive
    assert mutualnet.best_under(rows, 99) is None
    assert [row["macs"] for row in mutualnet.pareto(rows)] == [100, 150, 300]


def test_write_table(tmp_path):
    rows = hand_rows()
    paths = mutualnet.write_table(rows, str(tmp_path / "out"), "demo")
    assert [pathlib.Path(p).name for p in paths] == [
        "query_table.csv", "query_table.json", "query_table.png"]
    assert all(os.path.getsize(p) > 0 for p in paths)
    with open(paths[0], newline="") as f:
        read = list(csv.DictReader(f))
    assert tuple(read[0]) == mutualnet.FIELDS
    assert [int(row["macs"]) for row in read] == [row["macs"] for row in rows]
    assert float(read[1]["top1"]) == 0.60
    saved = json.loads(pathlib.Path(paths[1]).read_text())
    assert saved["rows"] == rows and saved["pareto"] == [1, 2, 0]


def cli_error(capsys, *args):
    with pytest.raises(SystemExit) as raised:
        query.main(list(args))
    assert raised.value.code not in (0, None)
    return capsys.readouterr().err


def test_cli_errors(capsys, data_dir, saved_model_path):
    common = ["--data", str(data_dir)]
    err = cli_error(capsys, "--model", "mobilenet_v9", "--weights", "w.weights.h5", *common)
    assert "unknown model 'mobilenet_v9'" in err and "mobilenet_v2" in err
    model = ["--model", str(saved_model_path), *common]
    err = cli_error(capsys, *model, "--resolutions", "32,-1")
    assert "--resolutions must be comma-separated positive integers" in err
    err = cli_error(capsys, *model, "--width_step", "0")
    assert "--width_step must be positive" in err
    err = cli_error(capsys, "--model", "mobilenet_v2", *common)
    assert "needs --weights" in err
    err = cli_error(capsys, "--model", str(saved_model_path.parent / "missing.keras"), *common)
    assert "no such file" in err
    err = cli_error(capsys, *model, "--resolutions", str(SIZE), "--budget_macs", "10")
    assert "below the smallest configuration" in err and "MACs" in err


def plain_keras_file(tmp_path):
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    model = keras.Model(inputs, keras.layers.Dense(CLASSES, name="predictions")(x))
    path = tmp_path / "plain.keras"
    model.save(path)
    return path


def test_cli_rejects_a_model_that_is_not_slimmable(capsys, data_dir, tmp_path):
    err = cli_error(capsys, "--model", str(plain_keras_file(tmp_path)), "--data",
                    str(data_dir))
    assert "not a bl_keras.slimmable.SlimmableNetwork" in err


def test_export_width_on_a_plain_model_errors(tmp_path):
    with pytest.raises(SystemExit, match="--width applies to slimmable networks"):
        export_cli.main(["--model", str(plain_keras_file(tmp_path)), "--output",
                         str(tmp_path / "out"), "--width", "0.5", "--image_size", str(SIZE)])


# The command lines started by `commands`: last, so the tests above ran alongside them.


def test_cli_end_to_end(commands):
    stdout = finish(commands["query"])
    assert "MMACs" in stdout and "top-1 %" in stdout
    rows = json.loads((commands["out"] / "query" / "query_table.json").read_text())["rows"]
    assert [(row["width"], row["resolution"]) for row in rows] == [(0.75, SIZE), (0.5, SIZE)]
    best = mutualnet.best_under(rows, 1e9)
    assert (f"best under 1000.00 MMACs: width {best['width']:.2f} at {SIZE} px: top-1 "
            f"{100 * best['top1']:.2f} %") in stdout
    assert (commands["out"] / "query" / "query_table.png").exists()


def test_export_fixed_width_saved_model(commands, saved_model_path, data_dir):
    # The same calibration as the export's (same sample, batches and crop), in process.
    model = keras.models.load_model(saved_model_path, compile=False)
    before = batch_norm_stats(model)
    assert calibrate(model, str(data_dir), 0.5, SIZE, num_images=16) == 16
    assert any(not np.array_equal(b, a) for b, a in zip(before, batch_norm_stats(model)))
    images = tf.random.stateless_normal([3, SIZE, SIZE, 3], seed=(1, 2))
    expected = model(images, width=0.5, training=False).numpy()  # logits: no softmax
    finish(commands["export"])
    loaded = tf.saved_model.load(str(commands["out"] / "serving" / "1"))
    served = loaded.signatures["predict_images"](images=images)
    np.testing.assert_allclose(served["logits"].numpy(), expected, atol=1e-4)
    np.testing.assert_allclose(served["probabilities"].numpy(),
                               tf.nn.softmax(expected).numpy(), atol=1e-5)
