"""MutualNet: width-resolution mutual learning (Yang et al., ECCV 2020).

One slimmable network (`bl_keras.slimmable`) trained so that every (width, input resolution)
pair is a usable sub-network; a budget then picks the pair, not a new training run.

- `sandwich`: the training loss (sandwich rule with inplace distillation); training itself
  lives in `train.mutualnet`.
- `table`: the query table (MACs, params, accuracy, latency of each calibrated
  (width, resolution)) and the best pair under a MACs budget.
- `output`: the table as CSV, JSON, a plot and text.
- `query`: the command line (`python -m bl_keras.mutualnet.query`).

    from bl_keras import mutualnet
    rows = mutualnet.query_table(model, data_dir, mutualnet.widths_grid(0.25, 1.0, 0.05), [224])

The names below are imported on first use, so importing the package (or `sandwich` alone) does
not load the data pipeline.
"""

import importlib

_EXPORTS = {
    "table": ("FIELDS", "best_under", "format_config", "pareto", "query_table", "widths_grid"),
    "output": ("format_table", "plot_table", "write_table"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_MODULE_OF)


def __getattr__(name):
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}.{_MODULE_OF[name]}")
    return getattr(module, name)


def __dir__():
    return sorted(set(globals()) | set(__all__))
