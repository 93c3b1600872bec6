"""What `python -m train.imagenet` checks before it trains: the data splits it reads, the model
directory and the configuration recorded there; --noeval; a complete run; quiet output."""

import json
import shutil

import pytest

from tests.train.helpers import metrics, run_module, tiny_data, train_args


@pytest.fixture(scope="module")
def data_without_val(tmp_path_factory):
    data = tiny_data(tmp_path_factory.mktemp("data"))
    shutil.rmtree(f"{data}/val")
    return data


@pytest.fixture(scope="module")
def noeval_run(data_without_val, tmp_path_factory):
    model_dir = tmp_path_factory.mktemp("noeval")
    args = train_args(data_without_val, model_dir, "--noeval")
    proc = run_module("train.imagenet", args)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return model_dir, args, proc


def _error_line(proc):
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    lines = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_missing_val_split_is_one_line_before_anything_is_built(data_without_val, tmp_path):
    model_dir = tmp_path / "run"
    line = _error_line(run_module("train.imagenet", train_args(data_without_val, model_dir)))
    assert line.startswith("error: --data_dir: validation split:")
    assert f"{data_without_val}/val" in line and "--noeval" in line
    assert not model_dir.exists()


def test_eval_mode_needs_the_val_split_not_the_train_split(data_without_val, tmp_path):
    line = _error_line(run_module("train.imagenet", train_args(
        data_without_val, tmp_path / "run", "--mode=eval")))
    assert f"--data_dir: validation split: Data directory {data_without_val}/val" in line
    assert "--noeval" not in line  # no hint to train without it: this run evaluates


def test_model_dir_that_is_a_file_is_refused(data_without_val, tmp_path):
    target = tmp_path / "taken"
    target.write_text("not a directory")
    line = _error_line(run_module("train.imagenet", train_args(data_without_val, target,
                                                               "--noeval")))
    assert line == f"error: --model_dir: {target} is a file, not a directory"


def test_noeval_trains_without_validation(noeval_run):
    model_dir, _, proc = noeval_run
    assert "Training without validation" in proc.stdout
    records = metrics(model_dir)
    assert [r["step"] for r in records] == [6, 12]
    for record in records:
        assert not [key for key in record if key.startswith(("val_", "eval_"))], record
        assert record["images_per_sec"] > 0 and record["skipped_images"] == 0
    assert (model_dir / "model.keras").exists() and not (model_dir / "best.keras").exists()


def test_run_records_its_configuration(noeval_run, data_without_val):
    model_dir, _, _ = noeval_run
    record = json.loads((model_dir / "config.json").read_text())
    assert record["model"]["model"] == "bl_resnet50" and record["model"]["task"] == "imagenet"
    assert record["model"]["alpha"] == 2 and record["model"]["classes"] == 4
    assert record["model"]["stage_depths"] == [2, 2, 2, 2]
    assert record["model"]["batch_size"] == 8
    assert record["run"]["epochs"] == 2 and record["run"]["eval"] is False
    assert record["run"]["data_dir"] == str(data_without_val)


def test_tensorflow_info_logs_are_not_in_the_output(noeval_run):
    _, _, proc = noeval_run
    assert "Sharding callback" not in proc.stdout + proc.stderr


def test_rerun_of_a_complete_run_says_so(noeval_run):
    model_dir, args, _ = noeval_run
    proc = run_module("train.imagenet", args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"already complete: 12 steps, see {model_dir}" in proc.stdout
    assert "Training" not in proc.stdout
    assert len(metrics(model_dir)) == 2


def test_other_model_configuration_is_refused_naming_the_option(noeval_run):
    model_dir, args, _ = noeval_run
    recorded = (model_dir / "config.json").read_text()
    line = _error_line(run_module("train.imagenet", args + ["--alpha=4", "--epochs=3"]))
    assert line.startswith(f"error: --model_dir: {model_dir} holds a run of another model")
    assert "alpha: 2 -> 4" in line and "new --model_dir" in line
    assert (model_dir / "config.json").read_text() == recorded


def test_more_epochs_extend_a_run_and_report_the_change(noeval_run, tmp_path):
    source, args, _ = noeval_run
    model_dir = tmp_path / "extended"
    shutil.copytree(source, model_dir)
    args = [a if not a.startswith("--model_dir=") else f"--model_dir={model_dir}" for a in args]
    # --verbosity=0 brings TensorFlow's INFO lines back (so their absence above means something).
    proc = run_module("train.imagenet", args + ["--epochs=3", "--verbosity=0"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Changed since the last run" in proc.stdout and "epochs: 2 -> 3" in proc.stdout
    assert "Resumed from" in proc.stdout and "at step 12" in proc.stdout
    assert [r["step"] for r in metrics(model_dir)] == [6, 12, 18]
    assert "Sharding callback" in proc.stderr
    assert json.loads((model_dir / "config.json").read_text())["run"]["epochs"] == 3
