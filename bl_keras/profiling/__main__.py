"""python -m bl_keras.profiling: params and GMACs of the paper's models, next to the paper's.

    python -m bl_keras.profiling                  # Tables 1, 2, 3, 6, 7, 8 and 9
    python -m bl_keras.profiling --tables 6,7,8,9
    python -m bl_keras.profiling --tables 10        # Faster R-CNN + FPN detectors (Table 10)
    python -m bl_keras.profiling --model bl_resnet50 --alpha 2 --beta 4 --size 256 --json
    python -m bl_keras.profiling --model bl_resnet50 --merge concat          # Table 7
    python -m bl_keras.profiling --model bl_resnet101 --num_merges 7         # Table 8
    python -m bl_keras.profiling --model bl_shufflenet_v2_x1_0               # Table 9, at 256
    python -m bl_keras.profiling --model speech.bl_resnet22 --alpha 4 --beta 1 --merge concat
    python -m bl_keras.profiling --model cifar_resnet20 --size 32 --shortcut B  # CIFAR, 28-32 px

The counting itself is the library's (`bl_keras.profiling`); the paper's values, `bl_keras.paper`.
"""

import argparse
import json
import sys

from bl_keras.command_line import HelpFormatter


def _build(name, options):
    from bl_keras import models

    return models.get(name, **options)


def profile_row(row, cache):
    """(params, macs) of a paper row; models are reused across input sizes."""
    from bl_keras import profiling

    key = (row.model, tuple(sorted(row.options.items())))
    if key not in cache:
        cache[key] = _build(row.model, row.options)
    return profiling.profile(cache[key], row.size)


def size_label(size):
    return str(size) if isinstance(size, int) else "x".join(str(s) for s in size[:2])


def format_table(title, rows, results, unit="G"):
    """The table with our and the paper's params and MACs (`unit` "G": GMACs, "M": MMACs)."""
    scale, digits = (1e3, 0) if unit == "M" else (1, 2)
    header = (f"{'model':<40} {'input':>7} {'params(M)':>10} {'paper':>7} {'diff':>6} "
              f"{unit + 'MACs':>7} {'paper':>6} {'diff':>6}")
    lines = [title, header, "-" * len(header)]
    notes = []
    for row, result in zip(rows, results):
        ours, theirs = result.gmacs * scale, row.gmacs * scale
        mark = ""
        if row.note:
            notes.append(f"* {row.label}: {row.note}")
            mark = "*"
        lines.append(
            f"{row.label + mark:<40} {size_label(row.size):>7} {result.mparams:>10.2f} "
            f"{row.mparams:>7.2f} {result.mparams - row.mparams:>+6.2f} {ours:>7.{digits}f} "
            f"{theirs:>6.{digits}f} {ours - theirs:>+6.{digits}f}"
        )
    return "\n".join(lines + notes)


DETECTION_TABLE = "10"  # detector MACs, not a classification table


def print_tables(table_ids, out=None):
    from bl_keras import paper

    out = out or sys.stdout
    cache = {}
    for table_id in table_ids:
        if table_id == DETECTION_TABLE:
            print_detection_table(out)
            continue
        rows = paper.TABLES[table_id]
        results = [profile_row(row, cache) for row in rows]
        print(format_table(paper.TABLE_TITLES[table_id], rows, results,
                           paper.TABLE_MAC_UNITS.get(table_id, "G")), file=out)
        print(file=out)
        cache.clear()


def format_detection_table(rows, costs):
    """Table 10: our MACs of backbone, FPN and heads beside the paper's detector totals."""
    header = (f"{'model':<26} {'data':<6} {'input':>8} {'backbone':>8} {'FPN':>6} "
              f"{'RPN3x3':>6} {'RPN1x1':>6} {'RoI':>5} {'total':>7} {'-RPN3x3':>7} "
              f"{'paper':>7}")
    lines = ["Table 10: Faster R-CNN + FPN, 300 proposals (Appendix A.6), GMACs (the paper's "
             "FLOPs are multiply-accumulates)", header, "-" * len(header)]
    for row, cost in zip(rows, costs):
        g = [x / 1e9 for x in (cost.backbone, cost.fpn, cost.rpn_conv, cost.rpn_predictors,
                               cost.roi_head, cost.total, cost.total - cost.rpn_conv)]
        lines.append(f"{row.label:<26} {row.dataset:<6} {size_label(row.image_shape):>8} "
                     f"{g[0]:>8.2f} {g[1]:>6.2f} {g[2]:>6.2f} {g[3]:>6.2f} {g[4]:>5.2f} "
                     f"{g[5]:>7.2f} {g[6]:>7.2f} {row.gmacs:>7.2f}")
    for (plain, p_cost), (bl, b_cost) in zip(zip(rows[::2], costs[::2]),
                                             zip(rows[1::2], costs[1::2])):
        lines.append(
            f"{plain.dataset} {size_label(plain.image_shape)}: {plain.label} / {bl.label}: "
            f"backbone {p_cost.backbone / b_cost.backbone:.2f}x, detector "
            f"{p_cost.total / b_cost.total:.2f}x, without the RPN's 3x3 convolution "
            f"{(p_cost.total - p_cost.rpn_conv) / (b_cost.total - b_cost.rpn_conv):.2f}x; "
            f"paper {plain.gmacs / bl.gmacs:.2f}x (backbone difference: ours "
            f"{(p_cost.backbone - b_cost.backbone) / 1e9:.2f}, paper "
            f"{plain.gmacs - bl.gmacs:.2f})")
    return "\n".join(lines)


def print_detection_table(out=None):
    from bl_keras import paper
    from bl_keras.detection.cost import faster_rcnn_fpn_macs

    out = out or sys.stdout
    costs = [faster_rcnn_fpn_macs(row.model, row.image_shape, row.num_classes, **row.options)
             for row in paper.TABLE10]
    print(format_detection_table(paper.TABLE10, costs), file=out)
    print(file=out)


# The CLI's builder option flags; which of them a model takes, its registry entry says.
OPTION_FLAGS = ("alpha", "beta", "merge", "branches", "num_merges", "shortcut")


def model_options(args, entry):
    from bl_keras import models

    options = {name: getattr(args, name) for name in OPTION_FLAGS
               if getattr(args, name) is not None}
    try:
        models.check_options(entry.name, options)
    except models.OptionError as err:
        raise SystemExit(f"error: --{err.option} does not apply to model {entry.name!r}")
    return options


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bl_keras.profiling", description=__doc__,
                                     formatter_class=HelpFormatter)
    parser.add_argument("--model", help="profile one model (a bl_keras.models name)")
    parser.add_argument("--alpha", type=int, help="width ratio of big to little branch (bL)")
    parser.add_argument("--beta", type=int, help="depth ratio of big to little branch (bL)")
    parser.add_argument("--merge", choices=["add", "concat"],
                        help="branch merge (bL-ResNet family and speech bL; Table 7)")
    parser.add_argument("--branches", type=int, choices=[2, 3],
                        help="branches per bL-module, K (bL-ResNet family; Table 7)")
    parser.add_argument("--num_merges", type=int,
                        help="merges of the branches, m (bL-ResNet family, default 4; Table 8)")
    parser.add_argument("--shortcut", choices=["A", "B"],
                        help="shortcut of the CIFAR ResNets: A (zero padding) or B (projection)")
    parser.add_argument("--size", type=int, help="input image size (default: the model's)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--tables", default="1,2,3,6,7,8,9",
                        help="paper tables to print (default 1,2,3,6,7,8,9; 10: detectors)")
    args = parser.parse_args(argv)

    from bl_keras import models, paper, profiling

    if args.model is None:
        table_ids = [t.strip() for t in args.tables.split(",") if t.strip()]
        valid = [*paper.TABLES, DETECTION_TABLE]
        unknown = [t for t in table_ids if t not in valid]
        if unknown:
            parser.error(f"--tables: unknown table(s) {unknown}; valid: {sorted(valid, key=int)}")
        print_tables(table_ids)
        return 0

    try:
        entry = models.get_entry(args.model)
    except ValueError as err:
        parser.error(f"--model: {err}")
    # ImageNet models downsample by 32; the CIFAR ones (input size 32) by 4.
    smallest = 8 if entry.input_size <= 32 else 32
    if args.size is not None and (args.size < smallest or entry.input_shape is not None):
        parser.error(f"--size must be >= {smallest} and applies to image models, got "
                     f"{args.size}")
    shape = entry.profile_shape(args.size)
    try:
        model = entry.builder(**model_options(args, entry))
    except ValueError as err:  # options the builder rejects, e.g. --num_merges 0
        parser.error(str(err))
    result = profiling.profile(model, shape)
    size = shape[0] if entry.input_shape is None else list(shape)
    record = {"model": args.model, "params": result.params, "macs": result.macs,
              "input_size": size}
    if args.json:
        print(json.dumps(record))
    else:
        # Under 1 GMAC (the CIFAR models) in MMACs, so two decimals still say something.
        macs = (f"{result.gmacs:.2f} GMACs" if result.macs >= 1e9 else
                f"{result.macs / 1e6:.2f} MMACs")
        print(f"{args.model}: {result.mparams:.2f}M params, {macs} at {size_label(size)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
