"""Speed and cost of a study's models on this machine: params and MACs of the trained model,
training and inference images/s with the models taking turns (`bl_keras.benchmark`).

The measurement is kept in <study_dir>/speeds.json and reused while the models and settings
are the same (a resumed study does not measure again); `remeasure` forces it.
"""

import json
import os

from bl_keras.study import runs as study_runs

SPEEDS_FILE = "speeds.json"


def measure(study_dir, runs, image_size, classes, batch=128, steps=20, warmup=3,
            precision="float32", remeasure=False):
    """{model: {"params", "macs", "train_images_per_sec", "infer_images_per_sec"}} of the
    study's compared models, each as trained in its first run (its model.keras)."""
    from bl_keras import saving
    from bl_keras.benchmark import measure as benchmark

    first = {}
    for run in runs:
        if run.kind == "model":
            first.setdefault(run.model, run)
    settings = {"models": list(first), "image_size": image_size, "classes": classes,
                "batch": batch, "steps": steps, "precision": precision}
    path = os.path.join(study_dir, SPEEDS_FILE)
    if not remeasure and os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            saved = json.load(f)
        if saved.get("settings") == settings:
            return saved["speeds"]
    files = {name: os.path.join(study_runs.run_dir(study_dir, run), "model.keras")
             for name, run in first.items()}
    builders = {name: (lambda file=file: saving.load_model(file)) for name, file in files.items()}
    speeds = {name: {} for name in first}
    for mode in ("infer", "train"):
        results = benchmark.benchmark_models(
            list(first), mode=mode, batch=batch, size=image_size, precision=precision,
            steps=steps, warmup=warmup, classes=classes, builders=builders)
        for result in results:
            speeds[result.model].update(params=result.params, macs=result.macs, **{
                f"{mode}_images_per_sec": result.images_per_sec,
                f"{mode}_images_per_sec_range": [result.images_per_sec_min,
                                                 result.images_per_sec_max]})
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"settings": settings, "device": benchmark.device_name(), "speeds": speeds},
                  f, indent=1)
    return speeds
