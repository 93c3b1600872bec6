"""Train several models with one recipe and write the comparison (accuracy, cost, speed).

    python -m train.study --flagfile=configs/study/fashion_mnist.flags \\
        --data_dir=<directory of the four Fashion-MNIST files>

Each model of --models is trained once per seed of --seeds by `train.imagenet` with the
recipe: every trainer and data flag given here (in the flagfile or on the command line, the
command line winning) is passed on. With --mutualnet_model, the study adds MutualNet's claim:
one slimmable network trained by `train.mutualnet` (its query table) against the same network
trained alone at each width of --mutualnet_widths. Every run is an ordinary trainer run in
<study_dir>/runs/<run>: a killed study, started again, resumes the unfinished run from its last
checkpoint and skips the finished ones. The test split is the trainer's validation split (the
idx source's t10k files); a model's result is its final epoch's top-1 there.

At the end the models' training and inference images/s are measured on this machine, taking
turns (kept in speeds.json), and <study_dir>/study.md, study.json and study.png are written.
"""

import json
import os
import sys

from absl import flags

from train import flags as train_flags
from train import mutualnet  # noqa: F401  (defines the image and MutualNet flags passed on)

FLAGS = flags.FLAGS

flags.DEFINE_string("study_dir", None, "Directory of the study: runs/<run> and study.*. "
                    "Required.")
flags.DEFINE_list("models", None, "Registry models to compare; the first is the baseline of "
                  "the ratios. Required.")
flags.DEFINE_list("seeds", ["0", "1"], "Seeds: each model is trained once per seed.")
flags.DEFINE_string("mutualnet_model", None, "A slimmable network (bl_keras.slimmable."
                    "list_models()) for the MutualNet comparison; none: no comparison.")
flags.DEFINE_list("mutualnet_widths", ["1.0", "0.75", "0.5"], "Widths of the MutualNet "
                  "comparison: the slimmable network's query table at each, and a network of "
                  "each trained alone; each must be on the query table's grid (--width_range, "
                  "--query_width_step).")
flags.DEFINE_list("mutualnet_seeds", None, "Seeds of the MutualNet runs (default: --seeds).")
flags.DEFINE_list("references", [], "Published results shown for scale, as name=top-1 %, "
                  "e.g. ResNet-18=94.9.")
flags.DEFINE_string("title", "Study", "Title of study.md and study.png.")
flags.DEFINE_integer("speed_batch", 128, "Batch of the images/s measurement.")
flags.DEFINE_integer("speed_steps", 20, "Timed steps per model and mode.")
flags.DEFINE_boolean("remeasure", False, "Measure images/s again even if speeds.json holds "
                     "this study's measurement.")

# Set per run by the study, never passed on from its own flags.
PER_RUN_FLAGS = {"model": "--models", "seed": "--seeds", "model_dir": "--study_dir",
                 "base_width": "--mutualnet_widths", "mutual": "--mutualnet_model",
                 "query": "--mutualnet_model"}
ENTRY_POINT_MODULES = ("train.flags", "train.imagenet")  # the flags of every run
MUTUALNET_MODULE = "train.mutualnet"  # only MutualNet's runs take these


def _ints(flag, values):
    try:
        numbers = [int(v) for v in values]
    except ValueError:
        raise train_flags.FlagError(flag, f"expected integers, got {values}") from None
    if not numbers or len(set(numbers)) != len(numbers):
        raise train_flags.FlagError(flag, f"expected distinct integers, got {values}")
    return numbers


def _references():
    pairs = []
    for item in FLAGS.references:
        name, _, value = item.partition("=")
        try:
            pairs.append((name.strip(), float(value)))
        except ValueError:
            raise train_flags.FlagError("references", f"expected name=top-1 %, got {item!r}")
    return pairs


def recipe_flags():
    """(flags of every run, flags of the MutualNet runs only): the trainer and data flags given
    to the study, serialised; the per-run ones, the evaluation mode and --noeval are refused."""
    modules = FLAGS.flags_by_module_dict()
    common, only_mutualnet = [], []
    for module, target in [*((m, common) for m in ENTRY_POINT_MODULES),
                           (MUTUALNET_MODULE, only_mutualnet)]:
        for flag in modules.get(module, ()):
            if not flag.present:
                continue
            if flag.name in PER_RUN_FLAGS:
                raise train_flags.FlagError(flag.name, f"is set per run by the study (see "
                                                       f"{PER_RUN_FLAGS[flag.name]})")
            if flag.name == "mode" and flag.value != "train":
                raise train_flags.FlagError("mode", "a study trains (--mode=train)")
            if flag.name == "eval" and not flag.value:
                raise train_flags.FlagError("eval", "a study reports the test split's top-1: "
                                                    "it cannot run with --noeval")
            target.append(flag.serialize())
    return common, only_mutualnet


def plan_from_flags():
    from bl_keras import models, slimmable
    from bl_keras.mutualnet import widths_grid
    from bl_keras.study import runs

    if not FLAGS.study_dir:
        raise train_flags.FlagError("study_dir", "required")
    if not FLAGS.models:
        raise train_flags.FlagError("models", "required")
    unknown = [name for name in FLAGS.models if name not in models.list_models()]
    if unknown:
        raise train_flags.FlagError("models", f"unknown model(s) {', '.join(unknown)}; valid: "
                                              f"{', '.join(models.list_models())}")
    seeds = _ints("seeds", FLAGS.seeds)
    widths = []
    if FLAGS.mutualnet_model:
        if FLAGS.mutualnet_model not in slimmable.list_models():
            raise train_flags.FlagError("mutualnet_model", f"unknown slimmable model "
                                        f"{FLAGS.mutualnet_model!r}; valid: "
                                        f"{', '.join(slimmable.list_models())}")
        widths = mutualnet._floats("mutualnet_widths", FLAGS.mutualnet_widths)
        low, high = mutualnet._floats("width_range", FLAGS.width_range, 2)
        grid = widths_grid(low, high, FLAGS.query_width_step)
        off_grid = [w for w in widths if not any(abs(w - g) < 1e-6 for g in grid)]
        if off_grid:
            raise train_flags.FlagError("mutualnet_widths", f"{off_grid} not in the query "
                                        f"table's widths {grid}")
    mutualnet_seeds = _ints("mutualnet_seeds", FLAGS.mutualnet_seeds or FLAGS.seeds)
    return runs.plan(FLAGS.models, seeds, FLAGS.mutualnet_model, widths, mutualnet_seeds)


def main(argv):
    del argv
    from bl_keras.study import report, runs, speed

    planned = plan_from_flags()
    common, only_mutualnet = recipe_flags()
    references = _references()
    os.makedirs(FLAGS.study_dir, exist_ok=True)
    print(f"Study of {len(planned)} runs in {FLAGS.study_dir}: "
          f"{', '.join(run.name for run in planned)}", flush=True)
    for index, run in enumerate(planned, 1):
        print(f"[{index}/{len(planned)}] {run.name}", flush=True)
        recipe = common + (only_mutualnet if run.kind != "model" else [])
        try:
            runs.execute(run, FLAGS.study_dir, recipe,
                         echo=lambda line: print(line, flush=True))
        except RuntimeError as err:
            print(f"error: {err}", file=sys.stderr, flush=True)
            return 1
    classes = _classes(runs.run_dir(FLAGS.study_dir, planned[0]))
    print("Measuring images/s (models taking turns)...", flush=True)
    speeds = speed.measure(FLAGS.study_dir, planned, FLAGS.image_size, classes,
                           batch=FLAGS.speed_batch, steps=FLAGS.speed_steps,
                           precision=FLAGS.precision, remeasure=FLAGS.remeasure)
    results = report.collect(FLAGS.study_dir, planned, speeds)
    paths = report.write(FLAGS.study_dir, results, FLAGS.title, references,
                         extra={"recipe": common, "mutualnet_recipe": only_mutualnet})
    with open(paths[0], encoding="utf-8") as f:
        print(f.read(), flush=True)
    print(f"wrote {', '.join(paths)}", flush=True)
    return 0


def _classes(directory):
    """The number of classes the runs trained (their config.json)."""
    with open(os.path.join(directory, "config.json"), encoding="utf-8") as f:
        return json.load(f)["model"]["classes"]


if __name__ == "__main__":
    train_flags.run(main)
