"""BlockDrop training (Wu et al., CVPR 2018): a policy network learns, per image, which residual
blocks of a pretrained backbone to run.

    # 1. curriculum: the backbone frozen, the policy learns the last e + 1 blocks at epoch e
    python -m train.blockdrop --flagfile=configs/blockdrop/resnet110_cifar10_curriculum.flags \\
        --backbone=runs/cifar_resnet110/model.keras --model_dir=runs/blockdrop_cl
    # 2. joint fine-tuning of policy and backbone
    python -m train.blockdrop --flagfile=configs/blockdrop/resnet110_cifar10_finetune.flags \\
        --init_from=runs/blockdrop_cl/model.keras --model_dir=runs/blockdrop_ft
    # all of it on generated data, 2 CPU cores: backbone, curriculum, fine-tuning
    python -m train.blockdrop --flagfile=configs/blockdrop/demo.flags

The trainer, data sources, strategies, checkpoints (kill -9 and run again: it resumes) and
flags are `train.imagenet`'s. `--stage=all` runs the three stages one after the other, each an
ordinary run in <model_dir>/{backbone,curriculum,finetune} (the backbone stage trains
--backbone_model with this command's recipe flags; the BlockDrop stages use Adam without weight
decay at --curriculum_lr / --finetune_lr, the authors' optimiser). Evaluation (`--mode=eval`,
and every epoch end) reports top-1, blocks per image and the reward of the thresholded policy.
"""

import os

from absl import flags

from train import flags as train_flags
from train import imagenet

FLAGS = flags.FLAGS

flags.DEFINE_enum("stage", "curriculum", ["curriculum", "finetune", "all"],
                  "curriculum: train the policy on the frozen --backbone; finetune: train policy "
                  "and backbone from --init_from; all: backbone, curriculum and fine-tuning in "
                  "<model_dir>/{backbone,curriculum,finetune}.")
flags.DEFINE_string("backbone", None, "curriculum: the pretrained classifier (.keras file of "
                    "bl_keras, e.g. a train.imagenet run's model.keras).")
flags.DEFINE_string("init_from", None, "finetune: the BlockDrop network to start from (.keras "
                    "file, e.g. the curriculum run's model.keras, or that run's directory).")
flags.DEFINE_enum("policy", "auto", ["auto", "resnet8", "resnet10"],
                  "Policy network: resnet8 (32x32 inputs), resnet10 (ImageNet, on the image "
                  "downsampled 2x); auto: resnet8 below 64 pixels.")
flags.DEFINE_integer("policy_downsample", 1, "The resnet8 policy sees the image averaged down "
                     "by this factor (1: the authors' CIFAR policy; 2: 4x fewer policy MACs).")
flags.DEFINE_string("policy_weights", None, "curriculum, resnet10 policy: start it from a "
                    "torchvision ResNet-18 checkpoint (.pth): its stem and the first block of "
                    "each stage, as the authors do (default: from scratch).")
flags.DEFINE_float("gamma", 1.0, "Penalty of a wrong prediction: its reward is -gamma.")
flags.DEFINE_float("bound_alpha", 0.8, "Probabilities are bounded to alpha p + (1 - alpha)"
                   "(1 - p) before sampling.")
flags.DEFINE_float("entropy_beta", 0.1, "Entropy bonus of the curriculum stage.")
flags.DEFINE_string("backbone_model", None, "all: the registry model the backbone stage "
                    "trains (with --alpha, --beta, ... as train.imagenet).")
flags.DEFINE_integer("backbone_epochs", None, "all: epochs of the backbone stage (default "
                     "--epochs).")
flags.DEFINE_integer("curriculum_epochs", None, "all: epochs of the curriculum stage (default: "
                     "the backbone's block count, so the curriculum reaches every block).")
flags.DEFINE_integer("curriculum_steps_per_epoch", None, "all: steps of each curriculum epoch "
                     "(default: --steps_per_epoch, else a pass over the data). The curriculum "
                     "adds one block per epoch for K epochs: shorter epochs keep it affordable "
                     "on large sets.")
flags.DEFINE_integer("finetune_epochs", None, "all: epochs of the fine-tuning stage (default "
                     "--epochs).")
flags.DEFINE_float("curriculum_lr", 1e-3, "all: Adam learning rate of the curriculum stage "
                   "(per --lr_batch_reference images).")
flags.DEFINE_float("finetune_lr", 1e-4, "all: Adam learning rate of the fine-tuning stage.")
flags.DEFINE_float("curriculum_gamma", None, "all: --gamma of the curriculum stage (default "
                   "--gamma; the authors' CIFAR recipe: 1).")
flags.DEFINE_float("finetune_gamma", None, "all: --gamma of the fine-tuning stage (default "
                   "--gamma; the authors' CIFAR recipe: 10).")


class BlockDropTask(imagenet.ImageClassificationTask):
    """Image classification whose model is a `BlockDropNetwork` and whose loss is BlockDrop's
    (`bl_keras.blockdrop.training`)."""

    name = "blockdrop"

    def __init__(self, recipe, source, policy_kind, policy_downsample=1, policy_weights=None,
                 **data):
        super().__init__(None, {}, **data)
        self.recipe = recipe
        self.source = source  # the backbone (curriculum) or the BlockDrop network (finetune)
        self.policy_kind = policy_kind
        self.policy_downsample = policy_downsample
        self.policy_weights = policy_weights
        self._step = None
        self._steps_per_epoch = None
        self._batch_size = None
        self._extras = None

    def model_config(self):
        return {"model": "blockdrop", "stage": self.recipe.stage, "source": self.source,
                "policy": self.policy_kind, "policy_downsample": self.policy_downsample,
                "policy_weights": self.policy_weights, "classes": self.num_classes}

    def data_config(self):
        return dict(super().data_config(), gamma=self.recipe.gamma,
                    bound_alpha=self.recipe.bound_alpha, entropy_beta=self.recipe.entropy_beta)

    def attach(self, step):
        self._step = step

    def build_model(self, config):
        from bl_keras import models
        from bl_keras.blockdrop import BlockDropNetwork, policy_for, start_from_resnet18
        from bl_keras.convert import CheckpointMismatchError, CheckpointReadError
        from bl_keras.saving import load_model
        from bl_keras.training.trainer import planned_steps_per_epoch

        self._steps_per_epoch = planned_steps_per_epoch(config, self.num_train_examples)
        self._batch_size = config.batch_size
        loaded = load_model(self.source)
        if self.recipe.stage == "curriculum":
            if isinstance(loaded, BlockDropNetwork):
                raise train_flags.FlagError("backbone", f"{self.source} is a BlockDrop network; "
                                            "the curriculum starts from a plain classifier")
            blocks = len(models.residual_blocks(loaded))
            kind = None if self.policy_kind == "auto" else self.policy_kind
            size = self._data["image_size"]
            loaded.trainable = False
            try:
                policy = policy_for(blocks, size, kind, downsample=self.policy_downsample)
            except ValueError as err:
                raise train_flags.FlagError("policy_downsample", str(err)) from None
            if self.policy_weights:
                try:
                    start_from_resnet18(policy, self.policy_weights)
                except (CheckpointReadError, CheckpointMismatchError, ValueError) as err:
                    raise train_flags.FlagError("policy_weights", str(err)) from None
            network = BlockDropNetwork(loaded, policy, name=f"blockdrop_{loaded.name}")
        else:
            if not isinstance(loaded, BlockDropNetwork):
                raise train_flags.FlagError("init_from", f"{self.source} is not a BlockDrop "
                                            "network (train the curriculum stage first)")
            loaded.backbone.trainable = True
            network = loaded
        classes = network.backbone.output_shape[-1]
        if classes != self.num_classes:
            raise train_flags.FlagError(
                "backbone" if self.recipe.stage == "curriculum" else "init_from",
                f"{self.source} classifies {classes} classes, the data has {self.num_classes}")
        return network

    def compute_loss(self, model, batch, training, label_smoothing=0.0):
        from bl_keras.blockdrop.training import blockdrop_loss

        import tensorflow as tf

        images, labels = batch[0], tf.cast(batch[1], tf.int32)
        loss, logits, self._extras = blockdrop_loss(
            model, images, labels, self.recipe, training, self._step, self._steps_per_epoch,
            self._batch_size)
        return loss, logits, labels

    def metric_sums(self, per_example_loss, logits, labels):
        import tensorflow as tf

        sums = super().metric_sums(per_example_loss, logits, labels)
        # The per-image extras of the compute_loss call of the same step (same trace).
        sums.update({name: tf.reduce_sum(value) for name, value in self._extras.items()})
        return sums


def recipe_from_flags():
    from bl_keras.blockdrop.training import BlockDropRecipe

    try:
        return BlockDropRecipe(FLAGS.stage, FLAGS.gamma, FLAGS.bound_alpha, FLAGS.entropy_beta,
                               FLAGS.seed)
    except ValueError as err:
        raise train_flags.FlagError("bound_alpha", str(err)) from None


def source_from_flags(config):
    """The .keras file the stage starts from, checked."""
    if FLAGS.stage == "curriculum":
        flag, path = "backbone", FLAGS.backbone
    else:
        flag, path = "init_from", FLAGS.init_from
        if path and os.path.isdir(path):
            path = os.path.join(path, "model.keras")
    if config.mode == "eval" and not path:  # evaluating a run's own checkpoints needs no source
        raise train_flags.FlagError(flag, "required (the network to build before restoring)")
    if not path:
        raise train_flags.FlagError(flag, f"required for --stage={FLAGS.stage}")
    if not path.endswith(".keras") or not os.path.isfile(path):
        raise train_flags.FlagError(flag, f"no such .keras file: {path}")
    return os.path.abspath(path)


def task_from_flags(config):
    if FLAGS.model:
        raise train_flags.FlagError("model", "BlockDrop's network comes from --backbone or "
                                             "--init_from (--backbone_model with --stage=all)")
    recipe = recipe_from_flags()
    policy_weights = FLAGS.policy_weights
    if policy_weights:
        if FLAGS.stage != "curriculum":
            raise train_flags.FlagError("policy_weights", "applies to --stage=curriculum (the "
                                        "fine-tuning stage continues the curriculum's policy)")
        if not os.path.isfile(policy_weights):
            raise train_flags.FlagError("policy_weights", f"no such file: {policy_weights}")
        policy_weights = os.path.abspath(policy_weights)
    source = source_from_flags(config)
    imagenet.prepare_data_dir()
    return BlockDropTask(recipe, source, FLAGS.policy, FLAGS.policy_downsample, policy_weights,
                         splits=config.splits,
                         **imagenet.data_options_from_flags())


# The flags of train.imagenet's runs (the shared trainer flags and the image task's), and this
# entry point's own BlockDrop flags.
TRAINER_AND_DATA_FLAGS = tuple(flag.name for module in ("train.flags", "train.imagenet")
                               for flag in FLAGS.flags_by_module_dict()[module])
BLOCKDROP_FLAGS = ("policy", "policy_downsample", "policy_weights", "gamma", "bound_alpha",
                   "entropy_beta")
# Flags the pipeline sets per stage (never passed on from its own flags).
PIPELINE_FLAGS = ("model_dir", "stage", "backbone", "init_from", "epochs", "backbone_model",
                  "backbone_epochs", "curriculum_epochs", "curriculum_steps_per_epoch",
                  "finetune_epochs", "curriculum_lr", "finetune_lr", "curriculum_gamma",
                  "finetune_gamma", "gamma", "mode", "eval_from")
# The backbone's recipe, not the BlockDrop stages' (they use Adam without weight decay).
BACKBONE_ONLY = (*imagenet.BUILDER_OPTION_FLAGS, "zero_init_residual", "optimizer", "lr",
                 "lr_schedule", "lr_step_epochs", "lr_step_factor", "weight_decay",
                 "weight_decay_all", "warmup_epochs", "momentum", "nesterov", "label_smoothing",
                 "model")


def _or(value, default):
    return default if value is None else value


def run_all_stages():
    """Backbone, curriculum and fine-tuning, each an ordinary run in its own directory."""
    from bl_keras import models
    from bl_keras.blockdrop import evaluate
    from bl_keras.saving import load_model
    from bl_keras.training.child_runs import run_stage

    if not FLAGS.model_dir:
        raise train_flags.FlagError("model_dir", "required")
    if not FLAGS.backbone_model:
        raise train_flags.FlagError("backbone_model", "required for --stage=all")
    if FLAGS.backbone_model not in models.list_models():
        raise train_flags.FlagError("backbone_model", f"unknown model {FLAGS.backbone_model!r}")
    given = [FLAGS[name] for name in (*TRAINER_AND_DATA_FLAGS, *BLOCKDROP_FLAGS)
             if FLAGS[name].present and name not in PIPELINE_FLAGS]
    image_flags = [f.serialize() for f in given if f.name not in BLOCKDROP_FLAGS]
    blockdrop_flags = [f.serialize() for f in given if f.name not in BACKBONE_ONLY]
    directory = {name: os.path.join(FLAGS.model_dir, name)
                 for name in ("backbone", "curriculum", "finetune")}
    for path in directory.values():
        os.makedirs(path, exist_ok=True)

    def stage(name, module, args):
        run_stage(name, module, args, directory[name])

    stage("backbone", "train.imagenet", [
        *image_flags, f"--model={FLAGS.backbone_model}",
        f"--epochs={FLAGS.backbone_epochs or FLAGS.epochs}"])
    backbone_file = os.path.join(directory["backbone"], "model.keras")
    blocks = len(models.residual_blocks(load_model(backbone_file)))
    adam = ["--optimizer=adam", "--weight_decay=0", "--lr_schedule=step", "--warmup_epochs=0"]
    curriculum_steps = ([f"--steps_per_epoch={FLAGS.curriculum_steps_per_epoch}"]
                        if FLAGS.curriculum_steps_per_epoch else [])
    stage("curriculum", "train.blockdrop", [
        *blockdrop_flags, *adam, *curriculum_steps, "--stage=curriculum",
        f"--backbone={backbone_file}", f"--lr={FLAGS.curriculum_lr}",
        f"--epochs={FLAGS.curriculum_epochs or blocks}",
        f"--gamma={_or(FLAGS.curriculum_gamma, FLAGS.gamma)}"])
    # The fine-tuning stage continues the curriculum's policy.
    finetune_flags = [f.serialize() for f in given
                      if f.name not in BACKBONE_ONLY and f.name != "policy_weights"]
    stage("finetune", "train.blockdrop", [
        *finetune_flags, *adam, "--stage=finetune",
        f"--init_from={os.path.join(directory['curriculum'], 'model.keras')}",
        f"--lr={FLAGS.finetune_lr}", f"--epochs={FLAGS.finetune_epochs or FLAGS.epochs}",
        f"--gamma={_or(FLAGS.finetune_gamma, FLAGS.gamma)}"])
    summary = evaluate.compare_with_backbone(
        os.path.join(directory["finetune"], "model.keras"), backbone_file,
        data=imagenet.data_options_from_flags(),
        batch_size=FLAGS.eval_batch_size or FLAGS.batch_size)
    print(evaluate.format_comparison(summary), flush=True)
    return 0


def main(argv):
    del argv
    if FLAGS.stage == "all":
        from bl_keras.training.child_runs import pipeline_status

        return pipeline_status(run_all_stages)
    from bl_keras.training import runner

    return runner.run(task_from_flags, train_flags.train_config())


if __name__ == "__main__":
    train_flags.run(main)
