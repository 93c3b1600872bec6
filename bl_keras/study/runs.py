"""The runs of a study: one ordinary trainer run per (model, seed), each in its own directory.

A study compares models trained with one recipe. Every run is a `train.imagenet` (or, for the
MutualNet comparison, `train.mutualnet`) process with the recipe's flags, the run's model and
seed, and `--model_dir=<study_dir>/runs/<run name>`: a killed study resumes each run from its
last checkpoint, and a finished run is skipped (the trainer finds it complete). Results are read
back from the run directories (`metrics.jsonl`, the MutualNet query table).
"""

import dataclasses
import json
import os


@dataclasses.dataclass(frozen=True)
class Run:
    """One trainer run: `kind` is "model" (a registry model, `train.imagenet`), "slimmable"
    (MutualNet's sandwich rule and query table) or "fixed" (`train.mutualnet --nomutual` at
    `width`: a network of that width trained alone)."""

    kind: str
    model: str
    seed: int
    width: float = 1.0

    @property
    def name(self):
        if self.kind == "model":
            return f"{self.model}_seed{self.seed}"
        if self.kind == "slimmable":
            return f"mutualnet_{self.model}_seed{self.seed}"
        return f"fixed_{self.model}_w{self.width:g}_seed{self.seed}"

    @property
    def entry_point(self):
        return "train.imagenet" if self.kind == "model" else "train.mutualnet"

    def flags(self, model_dir):
        """The run's own flags (the recipe's come first, these after them win)."""
        flags = [f"--model={self.model}", f"--seed={self.seed}", f"--model_dir={model_dir}"]
        if self.kind == "slimmable":
            flags += ["--mutual", "--query"]
        elif self.kind == "fixed":
            flags += ["--nomutual", "--noquery", f"--base_width={self.width:g}"]
        return flags


def plan(models, seeds, mutualnet_model=None, mutualnet_widths=(), mutualnet_seeds=()):
    """The study's runs, in the order they train: every model for the first seed, then the
    next seed (an interrupted study has one seed of every model first), then MutualNet's."""
    runs = [Run("model", model, seed) for seed in seeds for model in models]
    if mutualnet_model:
        for seed in mutualnet_seeds:
            runs.append(Run("slimmable", mutualnet_model, seed))
            runs += [Run("fixed", mutualnet_model, seed, width) for width in mutualnet_widths]
    return runs


def run_dir(study_dir, run):
    return os.path.join(study_dir, "runs", run.name)


def execute(run, study_dir, recipe_flags, echo=print):
    """Train `run` in a child process (its output goes to <run dir>/train.log and, a line per
    epoch, through `echo`); raises `RuntimeError` when it fails."""
    from bl_keras.training.child_runs import run_entry_point

    directory = run_dir(study_dir, run)
    os.makedirs(directory, exist_ok=True)
    run_entry_point(run.entry_point, [*recipe_flags, *run.flags(directory), "--noprogress"],
                    os.path.join(directory, "train.log"), f"run {run.name}", echo)


def final_metrics(directory):
    """The last epoch's record of a finished run's metrics.jsonl."""
    path = os.path.join(directory, "metrics.jsonl")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: the run has not written metrics yet")
    records = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                records.append(json.loads(line))
    epochs = [r for r in records if "epoch" in r and "val_top1" in r]
    if not epochs:
        raise ValueError(f"{path}: no evaluated epoch")
    return epochs[-1]


def query_rows(directory):
    """The MutualNet query table of a slimmable run."""
    path = os.path.join(directory, "query", "query_table.json")
    with open(path, encoding="utf-8") as f:
        return json.load(f)["rows"]
