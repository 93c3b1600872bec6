"""A short run of the demo configuration learns: validation top-1 far above chance (10%)."""

import pytest

from tests.train.helpers import fingerprint_line, metrics, run_module


@pytest.mark.slow
def test_demo_config_learns(tmp_path):
    model_dir = tmp_path / "demo"
    proc = run_module("train.imagenet", [
        "--flagfile=configs/demo.flags", f"--data_dir={tmp_path / 'demo_data'}",
        f"--model_dir={model_dir}", "--epochs=8", "--noprogress"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = metrics(model_dir)
    assert len(records) == 8 and records[-1]["step"] == 8 * (3000 // 64)
    best = max(r["val_top1"] for r in records)
    assert best >= 0.30, records  # chance is 0.10
    assert records[-1]["train_loss"] < records[0]["train_loss"] - 0.5
    assert (model_dir / "best.keras").exists()
    assert fingerprint_line(proc.stdout).startswith(f"global_step={8 * (3000 // 64)} ")
