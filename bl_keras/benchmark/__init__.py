"""Measured speed and memory of the models (`python -m bl_keras.benchmark`).

    from bl_keras.benchmark import benchmark
    result = benchmark("bl_resnet50", mode="infer", batch=16, size=224)
    result.images_per_sec, result.gmacs_per_sec, result.peak_rss_mb
"""

from bl_keras.benchmark.measure import BenchmarkResult, baseline_of, benchmark, speedups

__all__ = ["BenchmarkResult", "baseline_of", "benchmark", "speedups"]
