"""SpotTune (Guo et al., CVPR 2019): transfer learning where an agent picks, per image and per
residual block, the pretrained (frozen) block or its fine-tuned copy.

* `network`: `SpotTuneNetwork` and `spottune_network(pretrained, classes)`;
* `gumbel`: Gumbel-softmax with straight-through gradients (the agent's sampling);
* `training`: the loss of SpotTune, SpotTune-Global and the two baselines (`SpotTuneRecipe`);
* `evaluate`: top-1, fine-tuned blocks per image, MACs per image, the per-block share;
* `decathlon`: the Visual Decathlon score, results tables, the per-block plot.

Training runs on the shared trainer: `python -m train.spottune --flagfile=configs/spottune/...`.
"""

from bl_keras.spottune.decathlon import (BASELINE_ACCURACY, DOMAINS, decathlon_score,
                                         domain_score, plot_fine_tune_rates, results_table)
from bl_keras.spottune.gumbel import gumbel_softmax, straight_through
from bl_keras.spottune.network import (TEMPERATURE, SpotTuneNetwork, spottune_network,
                                       with_new_head)
from bl_keras.spottune.training import (METHODS, SpotTuneRecipe, global_penalty,
                                        spottune_loss)

__all__ = ["BASELINE_ACCURACY", "DOMAINS", "METHODS", "TEMPERATURE", "SpotTuneNetwork",
           "SpotTuneRecipe", "decathlon_score", "domain_score", "global_penalty",
           "gumbel_softmax", "plot_fine_tune_rates", "results_table", "spottune_loss",
           "spottune_network", "straight_through", "with_new_head"]
