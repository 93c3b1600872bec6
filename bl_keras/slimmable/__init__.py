"""Slimmable networks: one set of weights executable at any width (US-Net, MutualNet).

    from bl_keras import slimmable
    model = slimmable.get("mobilenet_v2", classes=1000)
    logits = model(images, width=0.35)                 # first 0.35x channels of every layer
    slimmable.calibrate_batch_norm(model, images_dataset, width=0.35, resolution=160)
    small = slimmable.fixed_network(model, 0.35)       # plain network of the 0.35x weights

The layers themselves run at any width (`bl_keras.layers.width`); this package holds the
network wrapper and its fixed sub-networks and counts (`network`) and post-training BatchNorm
statistics (`calibration`, and the train-split images they are computed on:
`calibration_images`).
"""

from bl_keras.layers.width import make_divisible
from bl_keras.slimmable.calibration import calibrate_batch_norm
from bl_keras.slimmable.network import (ARCHITECTURES, SlimmableNetwork, active_macs,
                                        active_params, fixed_network, narrowed, serving_model)

__all__ = ["SlimmableNetwork", "active_macs", "active_params", "calibrate_batch_norm",
           "fixed_network", "get", "list_models", "make_divisible", "narrowed", "serving_model"]


def list_models():
    """Names of the slimmable architectures MutualNet trains (`get` also takes any registry
    ResNet / ResNeXt name)."""
    return sorted(ARCHITECTURES)


def get(name, classes=1000, base_width=1.0, norm=None, classifier_activation="softmax",
        weights=None, **options):
    """Build the slimmable network `name`; `options` go to its builder (e.g. alpha, beta,
    stage_depths, merge of the ResNets). `weights`: None or a weights file (.weights.h5)."""
    from bl_keras.slimmable.network import architecture_builder

    try:
        architecture_builder(name)
    except ValueError:
        raise ValueError(f"Unknown slimmable model {name!r}. Valid names: "
                         f"{', '.join(list_models())}") from None
    model = SlimmableNetwork(name, classes=classes, base_width=base_width, norm=norm,
                             classifier_activation=classifier_activation, options=options,
                             name=f"slimmable_{name}")
    if weights is not None:
        model.load_weights(weights)
    return model
