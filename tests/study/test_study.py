"""`python -m train.study`: the run plan, the report from run directories, the flag checks, and
(slow) a whole small study on generated IDX files that, killed in its first run, resumes and
skips what is finished."""

import json

import pytest

from bl_keras.study import report, runs
from tests.data.idx_files import write_idx_set
from tests.train.helpers import kill_after_first_checkpoint, popen_module, run_module

STUDY = ["--data_source=idx", "--image_size=28", "--batch_size=8", "--epochs=1",
         "--steps_per_epoch=3", "--eval_crop_fraction=1.0", "--min_crop_area=0.5",
         "--color_jitter=0", "--speed_batch=4", "--speed_steps=2"]


def test_plan_trains_every_model_per_seed_then_mutualnet():
    planned = runs.plan(["a", "b"], [0, 1], "m", [1.0, 0.5], [3])
    assert [r.name for r in planned] == [
        "a_seed0", "b_seed0", "a_seed1", "b_seed1", "mutualnet_m_seed3",
        "fixed_m_w1_seed3", "fixed_m_w0.5_seed3"]
    assert planned[0].entry_point == "train.imagenet"
    assert planned[-1].entry_point == "train.mutualnet"
    assert "--base_width=0.5" in planned[-1].flags("d") and "--nomutual" in planned[-1].flags("d")
    assert "--query" in planned[4].flags("d")


def test_summarise_gives_mean_sample_std_and_range():
    summary = report.summarise([0.9, 0.92])
    assert summary["mean"] == pytest.approx(0.91)
    assert summary["std"] == pytest.approx(0.0141421, rel=1e-5)
    assert (summary["min"], summary["max"]) == (0.9, 0.92)
    assert report.summarise([0.5])["std"] == 0.0


def _fake_run(study_dir, run, top1, epochs=3):
    directory = study_dir / "runs" / run.name
    directory.mkdir(parents=True)
    lines = [{"epoch": e, "step": 10 * e, "val_top1": top1 - 0.1 * (epochs - e)}
             for e in range(1, epochs + 1)]
    (directory / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in lines) + "\n")
    return directory


def test_report_reads_final_epochs_and_query_tables(tmp_path):
    planned = runs.plan(["resnet", "bl"], [0, 1], "slim", [1.0, 0.5], [0])
    accuracies = {"resnet_seed0": 0.90, "bl_seed0": 0.91, "resnet_seed1": 0.92,
                  "bl_seed1": 0.89, "fixed_slim_w1_seed0": 0.88, "fixed_slim_w0.5_seed0": 0.80}
    for run in planned:
        directory = _fake_run(tmp_path, run, accuracies.get(run.name, 0.5))
        if run.kind == "slimmable":
            (directory / "query").mkdir()
            rows = [{"width": w, "resolution": r, "macs": int(1e6 * w * r), "params": int(1e4 * w),
                     "top1": 0.8 + 0.05 * w + 0.001 * r} for w in (1.0, 0.75, 0.5) for r in (28, 20)]
            (directory / "query" / "query_table.json").write_text(json.dumps({"rows": rows}))
    speeds = {"resnet": dict(params=100, macs=30e6, train_images_per_sec=800.0,
                             infer_images_per_sec=3000.0),
              "bl": dict(params=110, macs=20e6, train_images_per_sec=1000.0,
                         infer_images_per_sec=3900.0)}
    results = report.collect(str(tmp_path), planned, speeds)

    resnet, bl = results["models"]
    assert resnet["top1"]["values"] == [0.90, 0.92] and resnet["epochs"] == 3
    assert bl["top1"]["mean"] == pytest.approx(0.90)
    assert bl["macs_ratio_vs_first"] == pytest.approx(1.5)
    assert bl["infer_speedup_vs_first"] == pytest.approx(1.3)
    rows = results["mutualnet"]["rows"]
    assert [row["width"] for row in rows] == [1.0, 0.5]
    assert rows[0]["slimmable_top1"]["mean"] == pytest.approx(0.8 + 0.05 + 0.028)
    assert rows[1]["separate_top1"]["values"] == [0.80]
    assert rows[1]["macs"] == int(1e6 * 0.5 * 28)

    paths = report.write(str(tmp_path), results, "T", [("ResNet-18", 94.9)])
    text = open(paths[0]).read()
    assert "| bl | 2 | 3 | 90.00 ± 1.41 (89.00-91.00) |" in text
    assert "1.50x" in text and "1.30x" in text and "ResNet-18 (published, for scale)" in text
    assert "| 0.5 | 5,000 | 14.00 |" in text
    assert json.load(open(paths[1]))["references"] == {"ResNet-18": 94.9}
    assert open(paths[2], "rb").read(8) == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("extra,message", [
    (["--model=cifar_resnet20"], "--model: is set per run by the study (see --models)"),
    (["--noeval"], "--eval: a study reports the test split's top-1"),
    (["--models=cifar_resnet20,nope"], "--models: unknown model(s) nope"),
    (["--seeds=0,0"], "--seeds: expected distinct integers"),
    (["--mutualnet_model=cifar_resnet20", "--mutualnet_widths=0.6", "--query_width_step=0.25"],
     "--mutualnet_widths: [0.6] not in the query table's widths [1.0, 0.75, 0.5, 0.25]"),
    (["--mutualnet_model=resnet20"], "--mutualnet_model: unknown slimmable model 'resnet20'"),
])
def test_bad_study_flags_are_one_line_errors(tmp_path, extra, message):
    proc = run_module("train.study", ["--models=cifar_resnet20", f"--study_dir={tmp_path}",
                                      f"--data_dir={tmp_path}", *STUDY, *extra], timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert message in proc.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow  # ~4 min on 2 cores: 5 short trainer runs, twice, and the speed measurement
def test_study_resumes_after_a_kill_and_reports(tmp_path):
    data = tmp_path / "data"
    write_idx_set(data, train=48, test=16, classes=4, compressed=True)
    args = ["--models=cifar_resnet20,bl_cifar_resnet20", "--seeds=0", f"--data_dir={data}",
            f"--study_dir={tmp_path / 'study'}", *STUDY, "--mutualnet_model=cifar_resnet20",
            "--mutualnet_widths=1.0,0.5", "--width_range=0.5,1.0", "--query_width_step=0.5",
            "--resolutions=28,20", "--calibration_images=8", "--checkpoint_every=1",
            "--references=ResNet-18=94.9"]
    first_run = tmp_path / "study" / "runs" / "cifar_resnet20_seed0"
    killed_at = kill_after_first_checkpoint(popen_module("train.study", args), first_run)
    assert 1 <= killed_at < 3

    proc = run_module("train.study", args)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Resumed from" in (first_run / "train.log").read_text()
    results = json.loads((tmp_path / "study" / "study.json").read_text())
    assert [row["model"] for row in results["models"]] == ["cifar_resnet20", "bl_cifar_resnet20"]
    for row in results["models"]:
        assert 0 <= row["top1"]["mean"] <= 1 and row["epochs"] == 1
    assert results["models"][0]["params"] == 269_332  # 10 classes: 269,722
    assert results["models"][1]["macs_ratio_vs_first"] > 1.35
    assert [row["width"] for row in results["mutualnet"]["rows"]] == [1.0, 0.5]
    for name in ("study.md", "study.png", "speeds.json"):
        assert (tmp_path / "study" / name).exists()

    again = run_module("train.study", args)  # finished runs are not repeated
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("already complete") == 5
    assert "Measuring" in again.stdout
    assert json.loads((tmp_path / "study" / "study.json").read_text())["models"] == \
        results["models"]
