"""`bl_keras.benchmark`: what it measures and reports (figures, never wall-clock limits)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from bl_keras import benchmark
from bl_keras.benchmark import memory
from bl_keras.benchmark.measure import BenchmarkResult
from bl_keras.layers import inference

RESNET50_PARAMS = 25_557_032
BL_RESNET50_PARAMS = 26_694_568
SMALL = dict(batch=2, size=32, steps=3, warmup=1)  # odd: median step = median rate


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "bl_keras.benchmark", *args],
                          capture_output=True, text=True, env=env)


def test_baseline_names():
    assert benchmark.baseline_of("bl_resnet50") == "resnet50"
    assert benchmark.baseline_of("bl_seresnext101_32x4d") == "seresnext101_32x4d"
    assert benchmark.baseline_of("speech.bl_resnet22") == "speech.resnet22"
    assert benchmark.baseline_of("resnet50") is None
    assert benchmark.baseline_of("speech.bl_pyr_resnet22") is None  # no plain pyramid model


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="Linux only")
def test_peak_rss_sees_an_allocation_and_resets():
    memory.release_host_memory()
    assert memory.reset_peak_rss()
    before = memory.peak_rss_mb()
    block = np.ones(64 * 2**20, dtype=np.uint8)  # 64 MiB, touched
    assert memory.peak_rss_mb() >= before + 60
    del block
    memory.release_host_memory()
    memory.reset_peak_rss()
    assert memory.peak_rss_mb() < before + 30


def test_inference_result_counts_the_model():
    result = benchmark.benchmark("resnet50", mode="infer", **SMALL)
    assert (result.model, result.mode, result.batch, result.size) == ("resnet50", "infer", 2, 32)
    assert result.params == RESNET50_PARAMS
    # 224 -> 32 divides every feature map by 7 on each side: MACs scale by 1/49 (stem and head
    # aside); the exact 224 count is asserted in test_profiling.
    assert 4.09e9 / 49 * 0.95 < result.macs < 4.09e9 / 49 * 1.10
    assert 0 < result.images_per_sec_min <= result.images_per_sec <= result.images_per_sec_max
    assert result.step_ms == pytest.approx(1e3 * result.batch / result.images_per_sec, rel=1e-6)
    assert result.gmacs_per_sec == pytest.approx(result.gmacs * result.images_per_sec)
    assert result.peak_rss_mb > 100 and result.gpu_peak_mb is None


def test_training_runs_the_trainer_step():
    result = benchmark.benchmark("bl_resnet50", mode="train", **SMALL)
    assert result.mode == "train" and result.params == BL_RESNET50_PARAMS
    assert result.images_per_sec > 0


def test_bad_arguments_are_errors():
    with pytest.raises(ValueError, match="Unknown model 'resnet51'"):
        benchmark.benchmark("resnet51")
    with pytest.raises(ValueError, match="mode must be one of"):
        benchmark.benchmark("resnet50", mode="serve")
    with pytest.raises(ValueError, match="image classifiers"):
        benchmark.benchmark("speech.resnet22", mode="train")


def test_cli_json_has_one_object_per_model_and_ratios_to_the_first():
    environ = {k: v for k, v in os.environ.items() if k != inference.WEIGHT_CACHE_ENV}
    done = run_cli("--models", "resnet50,bl_resnet50", "--batch", "2", "--size", "32",
                   "--steps", "2", "--warmup", "1", "--json", env=environ)
    assert done.returncode == 0, done.stderr[-2000:]
    records = json.loads(done.stdout.strip().splitlines()[-1])
    assert [r["model"] for r in records] == ["resnet50", "bl_resnet50"]
    for record in records:
        for key in ("mode", "batch", "size", "images_per_sec", "macs", "params", "peak_rss_mb"):
            assert key in record
        assert (record["mode"], record["batch"], record["size"]) == ("infer", 2, 32)
        assert record["onednn_weight_cache"] is True  # an inference-only process, as served
    assert [r["params"] for r in records] == [RESNET50_PARAMS, BL_RESNET50_PARAMS]
    assert records[0]["speedup_vs_first"] == 1.0
    assert records[1]["speedup_vs_first"] == pytest.approx(
        records[1]["images_per_sec"] / records[0]["images_per_sec"])
    # bL-ResNet-50 a2 b4: 2.86 vs 4.09 GMACs at 224 (Table 1), the same ratio at 32.
    assert records[0]["macs"] / records[1]["macs"] == pytest.approx(1.43, abs=0.05)


@pytest.mark.parametrize("args, message", [
    (["--models", "resnet50,nope"], "--models: unknown model(s) nope"),
    (["--batch", "0"], "--batch must be >= 1"),
    (["--mode", "serve"], "invalid choice: 'serve'"),
])
def test_cli_flag_errors_name_the_flag(args, message):
    done = run_cli(*args)
    assert done.returncode == 2
    assert message in done.stderr


@pytest.mark.slow
def test_report_writes_table_json_and_plot(tmp_path):
    done = run_cli("--report", str(tmp_path), "--models", "resnet50,bl_resnet50",
                   "--train_models", "bl_resnet50", "--memory_models", "bl_resnet50",
                   "--memory_batch", "2", "--batch", "2", "--size", "32", "--steps", "1",
                   "--warmup", "0")
    assert done.returncode == 0, done.stderr[-2000:]
    text = (tmp_path / "benchmark.md").read_text()
    data = json.loads((tmp_path / "benchmark.json").read_text())
    assert [r["model"] for r in data["inference"]] == ["resnet50", "bl_resnet50"]
    assert [r["mode"] for r in data["training"]] == ["train"]
    assert data["memory"][0]["batch"] == 2 and data["memory"][0]["peak_rss_mb"] > 100
    infer = {r["model"]: r for r in data["inference"]}
    speedup = infer["bl_resnet50"]["images_per_sec"] / infer["resnet50"]["images_per_sec"]
    assert "| bl_resnet50 | 0.06 | 26.69 |" in text
    assert f"| {speedup:.2f}x | 1.42x |" in text  # measured speed-up, then the GMAC ratio
    assert (tmp_path / "throughput_vs_gmacs.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_results_round_trip_through_json():
    result = BenchmarkResult(model="m", mode="infer", batch=4, size=32, precision="float32",
                             jit_compile=False, device="CPU", steps=3, images_per_sec=10.0,
                             images_per_sec_min=8.0, images_per_sec_max=12.0, step_ms=400.0,
                             macs=2_000_000_000, params=10, peak_rss_mb=1.0)
    record = result.as_dict()
    assert record["gmacs"] == 2.0 and record["gmacs_per_sec"] == 20.0
    assert record["spread"] == pytest.approx(0.4)
    fields = BenchmarkResult.__dataclass_fields__
    assert BenchmarkResult(**{k: v for k, v in record.items() if k in fields}) == result
