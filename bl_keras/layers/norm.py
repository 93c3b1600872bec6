"""BatchNorm settings shared by every layer of a model.

The released PyTorch models use eps 1e-5 and momentum 0.1 (PyTorch's momentum weights the new batch,
so it is Keras momentum 0.9). Keras' own defaults (1e-3, 0.99) would silently change both training
and converted-weight outputs, so every layer takes its BatchNorm options from one dict.
"""

import keras

DEFAULT_NORM = {"momentum": 0.9, "epsilon": 1e-5, "synchronized": False}


def norm_config(norm=None, defaults=DEFAULT_NORM):
    """Complete a (possibly partial) BatchNorm options dict from `defaults`, whose keys are the
    valid options; unknown keys are an error."""
    config = dict(defaults)
    if norm:
        unknown = set(norm) - set(defaults)
        if unknown:
            raise ValueError(
                f"Unknown BatchNorm option(s) {sorted(unknown)}; valid: {sorted(defaults)}"
            )
        config.update(norm)
    return config


def batch_norm(norm, zero_gamma=False, **kwargs):
    norm = norm_config(norm)
    return keras.layers.BatchNormalization(
        momentum=norm["momentum"],
        epsilon=norm["epsilon"],
        synchronized=norm["synchronized"],
        gamma_initializer="zeros" if zero_gamma else "ones",
        **kwargs,
    )
