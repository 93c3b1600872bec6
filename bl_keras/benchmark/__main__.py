"""Speed and memory of bl_keras models against their baselines.

    python -m bl_keras.benchmark --models resnet50,bl_resnet50
    python -m bl_keras.benchmark --models resnet50,bl_resnet50 --mode train --batch 8 --json
    python -m bl_keras.benchmark --models resnet50,bl_resnet50 --precision mixed_bfloat16 \\
        --jit_compile                                               # e.g. on a GPU
    python -m bl_keras.benchmark --report results/                  # Markdown table + plot
    python -m bl_keras.benchmark --models resnet50,bl_resnet50 --breakdown   # where time goes
    python -m bl_keras.benchmark --mode train --precision mixed_bfloat16 --breakdown
    python -m bl_keras.benchmark --models bl_resnet50 --peers --authors_code=BigLittleNet/

Models are built in this process and take turns, one step each per round, so drifts in the
machine's speed hit all of them alike; the ratio to the first model is printed. Peak memory is
then the process's; `--isolate` measures each model in a fresh process, with its own peak.
Inference runs as a server runs: BatchNorm folded once, and (on CPUs where TensorFlow uses
oneDNN) each kernel kept in oneDNN's layout instead of reordered at every call
(TF_ONEDNN_ASSUME_FROZEN_WEIGHTS=1, set for inference-only runs unless the environment names
it; `=0` measures without; --report, which also trains, runs without).
"""

import argparse
import dataclasses
import json
import subprocess
import sys

from bl_keras.benchmark import measure as measure_module
from bl_keras.command_line import HelpFormatter
from bl_keras.layers import inference

DEFAULT_MODELS = "resnet50,bl_resnet50"


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m bl_keras.benchmark", description=__doc__,
                                     formatter_class=HelpFormatter)
    parser.add_argument("--models", default=None,
                        help=f"comma-separated model names (default {DEFAULT_MODELS}; with "
                             "--report, the report's inference models)")
    parser.add_argument("--batch", type=int, default=16, help="global batch size")
    parser.add_argument("--size", type=int, default=224, help="input image side")
    parser.add_argument("--mode", choices=measure_module.MODES, default="infer",
                        help="infer: forward passes; train: full trainer steps")
    parser.add_argument("--precision", choices=measure_module.PRECISIONS, default="float32",
                        help="compute precision (Keras dtype policy)")
    parser.add_argument("--jit_compile", action="store_true", help="compile with XLA")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per model")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--classes", type=int, default=1000, help="classifier outputs")
    parser.add_argument("--strategy", default="auto",
                        help="training distribution strategy (see train.imagenet --strategy)")
    parser.add_argument("--isolate", action="store_true",
                        help="measure each model in a fresh Python process, one after the "
                             "other: for each model's own peak memory; its speed ratios include "
                             "the machine's drift (the default, models taking turns in one "
                             "process, is the one for speed ratios)")
    parser.add_argument("--json", action="store_true", help="print one JSON list")
    parser.add_argument("--breakdown", action="store_true",
                        help="also time every convolution alone (in training with its two "
                             "gradients) and profile the step's op times by kind, and in "
                             "training by phase: forward, backward, update (see "
                             "bl_keras.benchmark.breakdown)")
    parser.add_argument("--peers", action="store_true",
                        help="inference only: each model in TensorFlow, its ONNX export in ONNX "
                             "Runtime and OpenVINO, and with --authors_code the authors' "
                             "architecture in PyTorch eager, ONNX Runtime and OpenVINO, taking "
                             "turns (engines not installed are skipped; bench extra)")
    parser.add_argument("--authors_code", metavar="DIR",
                        help="--peers: a checkout of the authors' repository (its models/ "
                             "package builds their bL-ResNet / ResNeXt / SE-ResNeXt)")
    parser.add_argument("--report", metavar="DIR",
                        help="measure the report's model sets and write DIR/benchmark.md, "
                             "benchmark.json and throughput_vs_gmacs.png")
    parser.add_argument("--train_models", default=None,
                        help="--report: models timed in training (default: the ResNet pairs)")
    parser.add_argument("--memory_models", default=None,
                        help="--report: models whose training peak memory is compared")
    parser.add_argument("--memory_batch", type=int, default=8,
                        help="--report: batch of the peak-memory comparison")
    args = parser.parse_args(argv)
    for flag in ("batch", "size", "steps", "classes", "memory_batch"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag} must be >= 1, got {getattr(args, flag)}")
    if args.warmup < 0:
        parser.error(f"--warmup must be >= 0, got {args.warmup}")
    if args.breakdown and (args.jit_compile or args.report or args.isolate):
        parser.error("--breakdown profiles steps without --jit_compile, --report or --isolate")
    if args.peers and (args.mode != "infer" or args.jit_compile or args.report or args.isolate
                       or args.breakdown):
        parser.error("--peers takes inference steps without --jit_compile, --report, "
                     "--isolate or --breakdown")
    if args.authors_code and not args.peers:
        parser.error("--authors_code applies to --peers")
    for flag in ("models", "train_models", "memory_models"):
        names = measure_module.split_names(getattr(args, flag))
        unknown = [n for n in names or () if n not in measure_module.models.list_models()]
        if unknown:
            parser.error(f"--{flag}: unknown model(s) {', '.join(unknown)}; valid: "
                         f"{', '.join(measure_module.models.list_models())}")
    return args


def measure(names, args, mode=None, batch=None, isolate=None):
    """Results for `names`: in this process, taking turns, or each in a child process (same
    flags, one model, JSON back) when isolated."""
    mode, batch = mode or args.mode, batch or args.batch
    isolate = args.isolate if isolate is None else isolate
    if not isolate:
        return measure_module.benchmark_models(
            names, mode=mode, batch=batch, size=args.size, precision=args.precision,
            jit_compile=args.jit_compile, steps=args.steps, warmup=args.warmup,
            classes=args.classes, strategy=args.strategy)
    return [_measure_in_child(name, args, mode, batch) for name in names]


def _measure_in_child(name, args, mode, batch):
    command = [sys.executable, "-m", "bl_keras.benchmark", "--models", name, "--mode", mode,
               "--batch", str(batch), "--size", str(args.size), "--precision", args.precision,
               "--steps", str(args.steps), "--warmup", str(args.warmup),
               "--classes", str(args.classes), "--strategy", args.strategy, "--json"]
    if args.jit_compile:
        command.append("--jit_compile")
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"benchmark of {name} failed:\n{done.stderr[-2000:]}")
    record = json.loads(done.stdout.strip().splitlines()[-1])[0]
    fields = measure_module.BenchmarkResult.__dataclass_fields__
    return measure_module.BenchmarkResult(**{k: v for k, v in record.items() if k in fields})


def format_results(results, weight_cache=False):
    ratios = measure_module.speedups(results)
    header = (f"{'model':<24} {'mode':<5} {'batch':>5} {'size':>4} {'GMACs':>6} {'Mparams':>7} "
              f"{'images/s':>9} {'min-max':>13} {'x first':>7} {'GMAC/s':>7} {'peak RSS MB':>11}")
    lines = [f"device: {results[0].device}, precision {results[0].precision}"
             f"{', XLA' if results[0].jit_compile else ''}"
             f"{', oneDNN weight cache' if weight_cache else ''}, "
             f"median of {results[0].steps} steps",
             header, "-" * len(header)]
    for result, ratio in zip(results, ratios):
        spread = f"{result.images_per_sec_min:.1f}-{result.images_per_sec_max:.1f}"
        line = (f"{result.model:<24} {result.mode:<5} {result.batch:>5} {result.size:>4} "
                f"{result.gmacs:>6.2f} {result.params / 1e6:>7.2f} {result.images_per_sec:>9.1f} "
                f"{spread:>13} {ratio:>7.2f} {result.gmacs_per_sec:>7.1f} "
                f"{result.peak_rss_mb:>11.0f}")
        if result.gpu_peak_mb is not None:
            line += f"  GPU peak {result.gpu_peak_mb:.0f} MB"
        lines.append(line)
    return "\n".join(lines)


def main(argv=None, cache_weights=False):
    """The command line; `cache_weights` (set when run as a program) lets an inference-only run
    turn on oneDNN's weight cache, which then holds for the whole process."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if cache_weights and args.mode == "infer" and not args.report:
        inference.cache_weights_for_inference()
    weight_cache = inference.weight_cache_enabled()
    if args.report:
        from bl_keras.benchmark import report

        path = report.write_report(args.report, args, measure)
        print(f"wrote {path}")
        return 0
    names = measure_module.split_names(args.models) or measure_module.split_names(DEFAULT_MODELS)
    if args.peers:
        return _peers(names, args)
    try:
        results = measure(names, args)
        breakdowns = None
        if args.breakdown:
            from bl_keras.benchmark import breakdown

            breakdowns = breakdown.breakdown_models(
                names, batch=args.batch, size=args.size, precision=args.precision,
                classes=args.classes, conv_steps=args.steps, mode=args.mode,
                strategy=args.strategy)
    except (ValueError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if args.json:
        ratios = measure_module.speedups(results)
        records = [dict(r.as_dict(), speedup_vs_first=ratio, onednn_weight_cache=weight_cache)
                   for r, ratio in zip(results, ratios)]
        for record, item in zip(records, breakdowns or ()):
            record["breakdown"] = item.as_dict()
        print(json.dumps(records))
    else:
        print(format_results(results, weight_cache))
        if breakdowns:
            print()
            print(breakdown.format_breakdowns(breakdowns, results))
    return 0


def _peers(names, args):
    from bl_keras.benchmark import peers

    try:
        results = peers.compare(names, args.authors_code, batch=args.batch, size=args.size,
                                classes=args.classes, steps=args.steps, warmup=args.warmup,
                                precision=args.precision)
    except (ValueError, FileNotFoundError, ImportError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps([dataclasses.asdict(r) for r in results]))
    else:
        print(peers.format_peers(results, args.batch, args.size))
    return 0


if __name__ == "__main__":
    sys.exit(main(cache_weights=True))
