"""SpotTune training (Guo et al., CVPR 2019): transfer a pretrained classifier to a new dataset,
an agent choosing per image and per residual block the frozen pretrained block or its
fine-tuned copy.

    # SpotTune, from a pretrained .keras classifier of the package
    python -m train.spottune --flagfile=configs/spottune/decathlon_resnet26.flags \\
        --pretrained=runs/imagenet12/model.keras --data_dir=decathlon/aircraft \\
        --model_dir=runs/spottune_aircraft
    # the baselines, same command and recipe: --method=finetune (every layer learns) or
    # --method=feature_extractor (only the new head learns); --method=global: SpotTune-Global
    # pretrain on half the demo classes, transfer to the other half, every method side by side
    python -m train.spottune --flagfile=configs/spottune/demo.flags

The trainer, data sources, strategies, checkpoints (kill -9 and run again: it resumes) and
flags are `train.imagenet`'s; `--classes` keeps a subset of the data's classes and
`--train_splits=train,val` trains on both splits (as the Decathlon entries do). The agent
learns at --agent_lr_factor times the network's learning rate, with its own weight decay.
`--method=all` runs, each an ordinary run in <model_dir>/<name>: the pretraining of
--pretrain_model on --pretrain_classes, then every method of --methods on --classes, and
prints their validation top-1 side by side with chance (summary.json, fine_tune_share.png).
"""

import json
import os

from absl import flags

from bl_keras.spottune.training import METHODS
from train import flags as train_flags
from train import imagenet

FLAGS = flags.FLAGS

flags.DEFINE_enum("method", "spottune", [*METHODS, "all"],
                  "spottune: the agent picks frozen or fine-tuned blocks per image; global: "
                  "SpotTune-Global (one choice per block for all images, --global_blocks "
                  "fine-tuned); finetune: every layer learns; feature_extractor: only the new "
                  "head learns; all: pretraining, then --methods, in <model_dir>/<name>.")
flags.DEFINE_string("pretrained", None, "The pretrained classifier (.keras file of bl_keras, "
                    "e.g. a train.imagenet run's model.keras).")
flags.DEFINE_enum("agent", "auto", ["auto", "decathlon_resnet8", "resnet8", "resnet10"],
                  "The agent: decathlon_resnet8 (the authors', 64x64 inputs), resnet8 (32x32), "
                  "resnet10 (ImageNet sizes); auto: decathlon_resnet8 up to 64 pixels, else "
                  "resnet10.")
flags.DEFINE_float("agent_lr_factor", 0.1, "The agent's learning rate over the network's "
                   "(the authors': 0.01 / 0.1).")
flags.DEFINE_float("agent_weight_decay", 1e-3, "The agent's weight decay (the authors').")
flags.DEFINE_float("temperature", 5.0, "Gumbel-softmax temperature.")
flags.DEFINE_integer("global_blocks", 0, "global: the number of blocks to fine-tune (k).")
flags.DEFINE_float("global_count_weight", 1.0, "global: weight of (sum of shares - k)^2.")
flags.DEFINE_float("global_entropy_weight", 0.1, "global: weight of the shares' entropy.")
flags.DEFINE_list("train_splits", ["train"], "The splits training reads: train, or train,val.")
flags.DEFINE_string("pretrain_model", None, "all: the registry model pretrained first.")
flags.DEFINE_list("pretrain_classes", None, "all: the classes it is pretrained on (label "
                  "indices of the data; --classes are the target's).")
flags.DEFINE_integer("pretrain_epochs", None, "all: epochs of the pretraining (default "
                     "--epochs).")
flags.DEFINE_list("methods", ["spottune", "finetune", "feature_extractor"],
                  "all: the methods run on the target, compared side by side.")


class SpotTuneTask(imagenet.ImageClassificationTask):
    """Image classification on the target data with a SpotTune network (or a baseline built
    from the same pretrained classifier) and SpotTune's loss (`bl_keras.spottune.training`)."""

    name = "spottune"

    def __init__(self, recipe, pretrained, agent_kind, temperature, **data):
        super().__init__(None, {}, **data)
        self.recipe = recipe
        self.pretrained = pretrained
        self.agent_kind = agent_kind
        self.temperature = temperature
        self._step = None
        self._extras = None
        self._agent_variables = set()

    def model_config(self):
        return {"model": "spottune", "method": self.recipe.method,
                "pretrained": self.pretrained, "agent": self.agent_kind,
                "temperature": self.temperature, "classes": self.num_classes}

    def data_config(self):
        recipe = self.recipe
        return dict(super().data_config(), train_split=self.train_split,
                    agent_lr_factor=recipe.agent_lr_factor,
                    agent_weight_decay=recipe.agent_weight_decay,
                    global_blocks=recipe.global_blocks,
                    global_count_weight=recipe.global_count_weight,
                    global_entropy_weight=recipe.global_entropy_weight)

    def attach(self, step):
        self._step = step

    def build_model(self, config):
        from bl_keras import models
        from bl_keras.blockdrop.policy import policy_for
        from bl_keras.saving import load_model
        from bl_keras.spottune import spottune_network, with_new_head

        pretrained = load_model(self.pretrained)
        if not models.residual_blocks(pretrained):
            raise train_flags.FlagError("pretrained", f"{self.pretrained} has no residual "
                                                      "blocks")
        if not self.recipe.uses_agent:
            model = with_new_head(pretrained, self.num_classes)
            if self.recipe.method == "feature_extractor":
                for layer in model.layers:  # frozen layers run in inference mode (BN too)
                    layer.trainable = layer.name == "predictions"
            return model
        size = self._data["image_size"]
        agent = None
        if self.agent_kind != "auto":
            agent = policy_for(len(models.residual_blocks(pretrained)), size, self.agent_kind,
                               choices=2)
        try:
            network = spottune_network(pretrained, self.num_classes, agent=agent,
                                       image_size=size, temperature=self.temperature,
                                       global_policy=self.recipe.method == "global")
        except ValueError as err:
            raise train_flags.FlagError("pretrained", str(err)) from None
        self._agent_variables = {id(v) for v in network.agent.trainable_variables}
        return network

    def variable_rule(self, variable):
        """(learning-rate multiplier, weight decay or None for the default) of a variable: the
        agent's own; the network's the flags'."""
        if id(variable) in self._agent_variables:
            return self.recipe.agent_lr_factor, self.recipe.agent_weight_decay
        return 1.0, None

    def compute_loss(self, model, batch, training, label_smoothing=0.0):
        if not self.recipe.uses_agent:
            return super().compute_loss(model, batch, training, label_smoothing)
        from bl_keras.spottune.training import spottune_loss

        import tensorflow as tf

        images, labels = batch[0], tf.cast(batch[1], tf.int32)
        loss, logits, self._extras = spottune_loss(model, images, labels, self.recipe,
                                                   training, self._step)
        return loss, logits, labels

    def metric_sums(self, per_example_loss, logits, labels):
        import tensorflow as tf

        sums = super().metric_sums(per_example_loss, logits, labels)
        if self.recipe.uses_agent:  # the extras of the same step's compute_loss (same trace)
            sums.update({name: tf.reduce_sum(value) for name, value in self._extras.items()})
        return sums


def recipe_from_flags(method=None):
    from bl_keras.spottune.training import SpotTuneRecipe

    try:
        return SpotTuneRecipe(method or FLAGS.method, FLAGS.agent_lr_factor,
                              FLAGS.agent_weight_decay, FLAGS.global_blocks,
                              FLAGS.global_count_weight, FLAGS.global_entropy_weight, FLAGS.seed)
    except ValueError as err:
        raise train_flags.FlagError("agent_lr_factor", str(err)) from None


def train_split_from_flags():
    splits = list(FLAGS.train_splits)
    if not splits or any(s not in ("train", "val") for s in splits) or len(set(splits)) != len(
            splits):
        raise train_flags.FlagError("train_splits", f"expected train or train,val, got "
                                                    f"{FLAGS.train_splits}")
    return "+".join(splits)


def pretrained_from_flags():
    path = FLAGS.pretrained
    if not path:
        raise train_flags.FlagError("pretrained", "required")
    if os.path.isdir(path):
        path = os.path.join(path, "model.keras")
    if not path.endswith(".keras") or not os.path.isfile(path):
        raise train_flags.FlagError("pretrained", f"no such .keras file: {path}")
    return os.path.abspath(path)


def task_from_flags(config):
    if FLAGS.model:
        raise train_flags.FlagError("model", "SpotTune's network comes from --pretrained "
                                             "(--pretrain_model with --method=all)")
    if FLAGS.temperature <= 0:
        raise train_flags.FlagError("temperature", f"must be > 0, got {FLAGS.temperature}")
    recipe = recipe_from_flags()
    pretrained = pretrained_from_flags()
    train_split = train_split_from_flags()
    imagenet.prepare_data_dir()
    return SpotTuneTask(recipe, pretrained, FLAGS.agent, FLAGS.temperature,
                        splits=config.splits, train_split=train_split,
                        **imagenet.data_options_from_flags())


# The flags of train.imagenet's runs (the shared trainer flags and the image task's), and this
# entry point's own.
TRAINER_AND_DATA_FLAGS = tuple(flag.name for module in ("train.flags", "train.imagenet")
                               for flag in FLAGS.flags_by_module_dict()[module])
SPOTTUNE_FLAGS = ("agent", "agent_lr_factor", "agent_weight_decay", "temperature",
                  "global_blocks", "global_count_weight", "global_entropy_weight",
                  "train_splits")
# Flags the pipeline sets per run (never passed on from its own flags).
PIPELINE_FLAGS = ("model_dir", "method", "pretrained", "epochs", "classes", "mode", "eval_from",
                  "pretrain_model", "pretrain_classes", "pretrain_epochs", "methods", "model")


def run_all_methods():
    """Pretraining, then each method on the target, each an ordinary run in its own
    directory; the side-by-side summary."""
    from bl_keras import models
    from bl_keras.training.child_runs import run_stage

    if not FLAGS.model_dir:
        raise train_flags.FlagError("model_dir", "required")
    if not FLAGS.pretrain_model or FLAGS.pretrain_model not in models.list_models():
        raise train_flags.FlagError("pretrain_model", f"a registry model is required for "
                                                      f"--method=all, got {FLAGS.pretrain_model!r}")
    if not FLAGS.pretrain_classes or not FLAGS.classes:
        raise train_flags.FlagError("pretrain_classes", "--method=all needs --pretrain_classes "
                                                        "and --classes (the target's)")
    unknown = sorted(set(FLAGS.methods) - set(METHODS))
    if unknown or not FLAGS.methods:
        raise train_flags.FlagError("methods", f"unknown {unknown}; valid: {METHODS}")
    given = [FLAGS[name] for name in (*TRAINER_AND_DATA_FLAGS, *SPOTTUNE_FLAGS)
             if FLAGS[name].present and name not in PIPELINE_FLAGS]
    image_flags = [f.serialize() for f in given if f.name not in SPOTTUNE_FLAGS]
    method_flags = [f.serialize() for f in given if f.name not in imagenet.BUILDER_OPTION_FLAGS]
    directory = {name: os.path.join(FLAGS.model_dir, name)
                 for name in ("pretrain", *FLAGS.methods)}
    for path in directory.values():
        os.makedirs(path, exist_ok=True)

    def stage(name, module, args):
        run_stage(name, module, args, directory[name])

    stage("pretrain", "train.imagenet", [
        *image_flags, f"--model={FLAGS.pretrain_model}",
        f"--classes={','.join(FLAGS.pretrain_classes)}",
        f"--epochs={FLAGS.pretrain_epochs or FLAGS.epochs}"])
    pretrained = os.path.join(directory["pretrain"], "model.keras")
    for method in FLAGS.methods:
        stage(method, "train.spottune", [
            *method_flags, f"--method={method}", f"--pretrained={pretrained}",
            f"--classes={','.join(FLAGS.classes)}", f"--epochs={FLAGS.epochs}"])
    summary = summarise_methods({m: os.path.join(directory[m], "model.keras")
                                 for m in FLAGS.methods})
    with open(os.path.join(FLAGS.model_dir, "summary.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1)
    print(format_summary(summary), flush=True)
    return 0


def summarise_methods(paths):
    """Validation top-1 of each method's model (and SpotTune's blocks, shares, MACs), chance;
    writes <model_dir>/fine_tune_share.png for the agent methods."""
    from bl_keras.blockdrop.evaluate import validation_dataset
    from bl_keras.saving import load_model
    from bl_keras.spottune import plot_fine_tune_rates
    from bl_keras.spottune.evaluate import evaluate_model

    data = imagenet.data_options_from_flags()
    dataset = validation_dataset(data, FLAGS.eval_batch_size or FLAGS.batch_size)
    shape = (FLAGS.image_size, FLAGS.image_size, 3)
    results = {name: evaluate_model(load_model(path), dataset, shape)
               for name, path in paths.items()}
    shares = {name: r["fine_tune_share"] for name, r in results.items()
              if "fine_tune_share" in r}
    if shares:
        plot_fine_tune_rates(shares, os.path.join(FLAGS.model_dir, "fine_tune_share.png"))
    return {"methods": results, "chance": 1.0 / len(FLAGS.classes)}


def format_summary(summary):
    lines = ["target validation top-1:"]
    for name, result in summary["methods"].items():
        line = f"  {name:<18} {100 * result['top1']:6.2f}%   {result['macs'] / 1e6:8.2f} M MACs"
        if "fine_tuned_mean" in result:
            line += (f"   fine-tuned blocks {result['fine_tuned_mean']:.2f} +- "
                     f"{result['fine_tuned_std']:.2f} of {result['num_blocks']}")
        lines.append(line)
    lines.append(f"  {'chance':<18} {100 * summary['chance']:6.2f}%")
    return "\n".join(lines)


def main(argv):
    del argv
    if FLAGS.method == "all":
        from bl_keras.training.child_runs import pipeline_status

        return pipeline_status(run_all_methods)
    from bl_keras.training import runner

    return runner.run(task_from_flags, train_flags.train_config())


if __name__ == "__main__":
    train_flags.run(main)
