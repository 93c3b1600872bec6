"""The Visual Decathlon challenge's score, results tables and SpotTune's per-block plot.

The score (Rebuffi et al. 2017): S = sum_d alpha_d max(0, E_d^max - E_d)^gamma with E_d the
test error on domain d, E_d^max twice the error of the challenge's baseline (a ResNet-26
fine-tuned on each domain), gamma = 2 and alpha_d = 1000 (E_d^max)^-gamma: a perfect domain
scores 1000, the baseline 250, twice its error or worse 0.
"""

import numpy as np

DOMAINS = ("imagenet12", "aircraft", "cifar100", "daimlerpedcls", "dtd", "gtsrb",
           "vgg-flowers", "omniglot", "svhn", "ucf101")
# Top-1 (%) of the challenge's baseline, the "Finetune" row of Rebuffi et al. 2017 (Learning
# multiple visual domains with residual adapters, Table 2; score 2500 by construction).
BASELINE_ACCURACY = {
    "imagenet12": 59.87, "aircraft": 60.34, "cifar100": 82.12, "daimlerpedcls": 92.82,
    "dtd": 55.53, "gtsrb": 97.53, "vgg-flowers": 81.41, "omniglot": 87.69, "svhn": 96.55,
    "ucf101": 51.20,
}
GAMMA = 2.0
POINTS = 1000.0


def domain_score(accuracy, baseline_accuracy, gamma=GAMMA, points=POINTS):
    """One domain's points for top-1 `accuracy` (%) against the baseline's."""
    error, worst = 100.0 - accuracy, 2.0 * (100.0 - baseline_accuracy)
    return points * max(0.0, worst - error) ** gamma / worst ** gamma


def decathlon_score(accuracies, baseline=None, gamma=GAMMA, points=POINTS):
    """The challenge's score of `accuracies` ({domain: top-1 %}) against `baseline`
    ({domain: top-1 %}, default the challenge's); domains without a baseline are an error."""
    baseline = BASELINE_ACCURACY if baseline is None else baseline
    missing = sorted(set(accuracies) - set(baseline))
    if missing:
        raise ValueError(f"no baseline accuracy for {missing}; known: {sorted(baseline)}")
    return sum(domain_score(a, baseline[d], gamma, points) for d, a in accuracies.items())


def results_table(rows, domains=None, baseline=None):
    """Markdown table of {method: {domain: top-1 %}}: one column per domain and the score
    (computed against `baseline` where it names every domain of the row)."""
    baseline = BASELINE_ACCURACY if baseline is None else baseline
    domains = list(domains or dict.fromkeys(d for row in rows.values() for d in row))
    lines = ["| method | " + " | ".join(domains) + " | score |",
             "|---|" + "---:|" * (len(domains) + 1)]
    for method, row in rows.items():
        cells = [f"{row[d]:.2f}" if d in row else "" for d in domains]
        known = all(d in baseline for d in row)
        score = f"{decathlon_score(row, baseline):.0f}" if known else "n/a"
        lines.append(f"| {method} | " + " | ".join(cells) + f" | {score} |")
    return "\n".join(lines) + "\n"


def plot_fine_tune_rates(rates, path, labels=None, block_names=None):
    """Bar chart of the share of images that run each block's fine-tuned copy (the paper's
    figure); `rates` is [K] or {dataset: [K]}."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not isinstance(rates, dict):
        rates = {labels or "": rates}
    figure = Figure(figsize=(8, 4))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    k = len(next(iter(rates.values())))
    width = 0.8 / len(rates)
    for i, (name, values) in enumerate(rates.items()):
        axes.bar(np.arange(k) + (i - (len(rates) - 1) / 2) * width, values, width,
                 label=name or None)
    axes.set_xticks(np.arange(k), block_names or [str(i + 1) for i in range(k)])
    axes.set_xlabel("residual block")
    axes.set_ylabel("share of images fine-tuning it")
    axes.set_ylim(0, 1)
    if len(rates) > 1 or next(iter(rates)):
        axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
