"""Studies: several models trained with one recipe, compared on accuracy, cost and speed
(`python -m train.study`).

    runs.plan(...)        the trainer runs, one directory each
    speed.measure(...)    params, MACs, training and inference images/s, models taking turns
    report.collect(...)   test top-1 over seeds, MutualNet's widths; report.write -> study.*
"""

from bl_keras.study import report, runs, speed

__all__ = ["report", "runs", "speed"]
