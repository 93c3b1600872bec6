"""The training machinery: one custom training loop for every `tf.distribute` strategy.

    from bl_keras.training import ClassificationTask, TrainConfig, Trainer
    trainer = Trainer(my_task, TrainConfig(model_dir="runs/x", epochs=2))
    trainer.train()

A task (`task.ClassificationTask`) supplies the model, datasets and loss; the `Trainer`
(`trainer`) runs it as a `TrainConfig` (`config`) says, with checkpoints, resumption and the
learning-rate schedules (`schedules`), under a strategy chosen by name (`distribute`), one model
per run directory (`model_dir`: config.json, completed runs);
`runner.run` trains or evaluates one task as the command-line entry points
(`python -m train.imagenet`, `train.speech`, `train.mutualnet`) do.
"""

from bl_keras.training.distribute import STRATEGIES, make_strategy
from bl_keras.training.schedules import WarmupSchedule
from bl_keras.training.task import ClassificationTask
from bl_keras.training.config import PRECISIONS, ConfigError, TrainConfig
from bl_keras.training.trainer import Trainer, TrainingDiverged

__all__ = ["PRECISIONS", "STRATEGIES", "ClassificationTask", "ConfigError", "TrainConfig",
           "Trainer", "TrainingDiverged", "WarmupSchedule", "make_strategy"]
