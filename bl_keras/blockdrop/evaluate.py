"""Evaluate a BlockDrop network: top-1, blocks and MACs per image, distinct policies; the
comparison with the full backbone; a plot of blocks used per class.

    python -m bl_keras.blockdrop.evaluate --model=runs/blockdrop_ft/model.keras \\
        --data_source=idx --data_dir=DIR --image_size=28 [--backbone=runs/bb/model.keras]
        [--plot=blocks.png]

Every image runs the thresholded policy, the backbone executing only its kept blocks. MACs are
multiply-accumulates (the BlockDrop paper's FLOPs are twice these), the policy network included.
"""

import argparse
import sys

import numpy as np

from bl_keras.command_line import HelpFormatter

# The data options of `bl_keras.data.build_dataset` an evaluation reads.
DATA_KEYS = ("data_dir", "image_size", "manual_dir", "tfds_name", "label_offset", "num_classes",
             "eval_crop_fraction", "classes", "domain")


def validation_dataset(data, batch_size):
    """The evaluation split of `data` (the options of `train.imagenet`'s task: data_source,
    data_dir, image_size, ...), one ordered pass."""
    from bl_keras.data import build_dataset

    source = data["data_source"]
    return build_dataset(source_name="imagefolder" if source == "demo" else source,
                         split="val", training=False, batch_size=batch_size, seed=0,
                         **{key: data[key] for key in DATA_KEYS if key in data}).dataset


def policies_and_predictions(network, dataset):
    """(policies [N, K], correct [N], labels [N]) of the thresholded policy over `dataset`."""
    import tensorflow as tf

    from bl_keras.blockdrop.network import threshold

    @tf.function
    def step(images):
        policy = threshold(network.probabilities(images, training=False))
        logits = network.run(images, policy, training=False)
        return policy, tf.argmax(logits, axis=-1, output_type=tf.int32)

    policies, correct, labels = [], [], []
    for images, batch_labels in dataset:
        policy, predicted = step(images)
        policies.append(policy.numpy())
        labels.append(batch_labels.numpy())
        correct.append(predicted.numpy() == batch_labels.numpy())
    return np.concatenate(policies), np.concatenate(correct), np.concatenate(labels)


def backbone_top1(backbone, dataset):
    import tensorflow as tf

    predict = tf.function(lambda x: tf.argmax(backbone(x, training=False), axis=-1,
                                              output_type=tf.int32))
    hits = [predict(images).numpy() == labels.numpy() for images, labels in dataset]
    return float(np.concatenate(hits).mean())


def measure_speed(network, images, steps=20, warmup=3):
    """Images/s of the BlockDrop network (policy + gathered blocks) and of its full backbone on
    the batch `images`, the two taking turns (one step each per round); medians."""
    import statistics
    import time

    import tensorflow as tf

    images = tf.constant(images)
    runners = {"blockdrop": tf.function(lambda x: network(x, training=False)),
               "full": tf.function(lambda x: network.backbone(x, training=False))}
    timed = {name: [] for name in runners}
    for round_ in range(warmup + steps):
        for name, run in runners.items():
            start = time.perf_counter()
            run(images).numpy()
            if round_ >= warmup:
                timed[name].append(time.perf_counter() - start)
    batch = int(images.shape[0])
    return {f"{name}_images_per_sec": batch / statistics.median(times)
            for name, times in timed.items()}


def summarise(policies, correct, labels, costs):
    """The evaluation's figures: top-1, blocks and MACs per image (mean, std), distinct
    policies, and the mean blocks of each class."""
    blocks = policies.sum(axis=1)
    macs = costs.per_image(policies)
    return {
        "images": int(len(correct)), "top1": float(correct.mean()),
        "blocks_mean": float(blocks.mean()), "blocks_std": float(blocks.std()),
        "num_blocks": int(policies.shape[1]),
        "macs_mean": float(macs.mean()), "macs_std": float(macs.std()),
        "full_macs": int(costs.full), "policy_macs": int(costs.policy),
        "distinct_policies": int(len({row.tobytes() for row in policies.astype(np.uint8)})),
        "blocks_per_class": {int(c): float(blocks[labels == c].mean())
                             for c in np.unique(labels)},
    }


def evaluate_network(network, data, batch_size=64):
    """`summarise` of a `BlockDropNetwork` on `data`'s val split."""
    from bl_keras.blockdrop.cost import block_costs

    dataset = validation_dataset(data, batch_size)
    policies, correct, labels = policies_and_predictions(network, dataset)
    shape = (data["image_size"], data["image_size"], 3)
    return summarise(policies, correct, labels, block_costs(network, shape))


def evaluate_file(path, data, batch_size=64):
    """`summarise` of the BlockDrop network in the .keras file `path` on `data`'s val split."""
    from bl_keras.saving import load_model

    return evaluate_network(load_model(path), data, batch_size)


def backbone_summary(backbone_path, data, batch_size=64):
    """The full network's top-1 on `data`'s val split and the chance level."""
    from bl_keras.saving import load_model

    backbone = load_model(backbone_path)
    return {"backbone_top1": backbone_top1(backbone, validation_dataset(data, batch_size)),
            "chance": 1.0 / backbone.output_shape[-1]}


def compare_with_backbone(path, backbone_path, data, batch_size=64):
    """The BlockDrop network's summary, plus the full backbone's top-1 and the chance level."""
    return {**evaluate_file(path, data, batch_size),
            **backbone_summary(backbone_path, data, batch_size)}


def format_summary(summary):
    return (f"BlockDrop: top-1 {100 * summary['top1']:.2f}% on {summary['images']} images; "
            f"blocks {summary['blocks_mean']:.2f} +- {summary['blocks_std']:.2f} of "
            f"{summary['num_blocks']}; MACs per image {summary['macs_mean'] / 1e6:.2f} +- "
            f"{summary['macs_std'] / 1e6:.2f} M (policy network {summary['policy_macs'] / 1e6:.2f}"
            f" M included); {summary['distinct_policies']} distinct policies")


def format_comparison(summary):
    saving = 1 - summary["macs_mean"] / summary["full_macs"]
    return "\n".join([
        format_summary(summary),
        f"Full network: top-1 {100 * summary['backbone_top1']:.2f}%, "
        f"{summary['full_macs'] / 1e6:.2f} M MACs per image; BlockDrop uses {100 * saving:.1f}% "
        f"fewer MACs at {100 * (summary['top1'] - summary['backbone_top1']):+.2f} points "
        f"(chance {100 * summary['chance']:.1f}%)"])


def plot(summaries, labels, path, class_names=None):
    """Blocks run per class (a bar group per network) and top-1 against mean blocks (a point
    per network, e.g. one per gamma, with the full backbone at K when compared)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(12, 4.5))
    FigureCanvasAgg(figure)
    per_class, accuracy = figure.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    classes = sorted(summaries[0]["blocks_per_class"])
    names = [class_names[c] if class_names else str(c) for c in classes]
    width = 0.8 / len(summaries)
    for i, (summary, label) in enumerate(zip(summaries, labels)):
        positions = np.arange(len(classes)) + (i - (len(summaries) - 1) / 2) * width
        per_class.bar(positions, [summary["blocks_per_class"].get(c, np.nan) for c in classes],
                      width, label=label)
    per_class.set_xticks(np.arange(len(classes)), names)
    per_class.set_ylabel(f"blocks run (of {summaries[0]['num_blocks']})")
    per_class.set_xlabel("class")
    per_class.set_title("Blocks per class")
    per_class.legend(fontsize="small")
    for summary, label in zip(summaries, labels):
        accuracy.errorbar(summary["blocks_mean"], 100 * summary["top1"],
                          xerr=summary["blocks_std"], fmt="o", capsize=3, label=label)
    full = [s for s in summaries if "backbone_top1" in s]
    if full:
        accuracy.plot(full[0]["num_blocks"], 100 * full[0]["backbone_top1"], "k*",
                      markersize=12, label="full network")
    accuracy.set_xlabel("blocks run per image (mean +- std)")
    accuracy.set_ylabel("top-1 (%)")
    accuracy.set_title("Accuracy against blocks")
    accuracy.grid(alpha=0.3)
    accuracy.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m bl_keras.blockdrop.evaluate",
                                     description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--model", required=True, action="append",
                        help="the BlockDrop network (.keras); repeat it to compare several "
                             "(one per gamma, say): each is evaluated and plotted")
    parser.add_argument("--labels", help="comma-separated names of the --model files in the "
                                         "report and plot (default: the file paths)")
    parser.add_argument("--backbone", help="the full network to compare with (.keras)")
    parser.add_argument("--data_source", default="idx",
                        choices=("imagefolder", "tfrecord", "tfds", "idx", "demo"))
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--tfds_name", default="imagenet2012")
    parser.add_argument("--image_size", type=int, default=32)
    parser.add_argument("--eval_crop_fraction", type=float, default=1.0)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--plot", help="write the blocks-per-class and accuracy-against-blocks "
                                       "plot here (.png)")
    parser.add_argument("--speed", action="store_true",
                        help="also time each BlockDrop network against its full backbone on "
                             "the first --batch_size validation images (taking turns)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    return parser.parse_args(argv)


def evaluate(path, args, data, compared):
    """The summary of one --model, with the backbone's figures `compared` and, when asked, its
    speed; the network is loaded once for both."""
    from bl_keras.saving import load_model

    network = load_model(path)
    summary = {**evaluate_network(network, data, args.batch_size), **compared}
    if args.speed:
        images, _ = next(iter(validation_dataset(data, args.batch_size)))
        summary.update(measure_speed(network, images))
        summary["speedup"] = (summary["blockdrop_images_per_sec"]
                              / summary["full_images_per_sec"])
        summary["mac_ratio"] = summary["full_macs"] / summary["macs_mean"]
    return summary


def report(summary, args):
    lines = [format_comparison(summary) if args.backbone else format_summary(summary)]
    if args.speed:
        lines.append(f"Speed (batch {args.batch_size}, taking turns): BlockDrop "
                     f"{summary['blockdrop_images_per_sec']:.0f} images/s, full network "
                     f"{summary['full_images_per_sec']:.0f} images/s: {summary['speedup']:.2f}x "
                     f"for a MAC ratio of {summary['mac_ratio']:.2f}x")
    return "\n".join(lines)


def main(argv=None):
    import json

    args = parse_args(sys.argv[1:] if argv is None else argv)
    labels = args.labels.split(",") if args.labels else list(args.model)
    if len(labels) != len(args.model):
        print(f"error: --labels names {len(labels)} networks but {len(args.model)} --model "
              "files are given", file=sys.stderr)
        return 2
    data = dict(data_source=args.data_source, data_dir=args.data_dir,
                tfds_name=args.tfds_name, image_size=args.image_size,
                eval_crop_fraction=args.eval_crop_fraction)
    try:
        # The full network is evaluated once, whatever the number of BlockDrop networks.
        compared = backbone_summary(args.backbone, data, args.batch_size) if args.backbone else {}
        summaries = [evaluate(path, args, data, compared) for path in args.model]
    except (FileNotFoundError, ValueError, TypeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if args.plot:
        plot(summaries, labels, args.plot)
    for summary, label in zip(summaries, labels):
        summary["label"] = label
        print(json.dumps(summary) if args.json else
              (f"[{label}]\n" if len(summaries) > 1 else "") + report(summary, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
