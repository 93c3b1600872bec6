"""Model zoo: named constructors, a registry (`get`, `list_models`, `check_options`) and detection
features."""

from bl_keras.models.image import *  # noqa: F401,F403  (the named constructors)
from bl_keras.models.image import __all__ as _image_models
from bl_keras.models.cifar import cifar_resnet, decathlon_resnet
from bl_keras.models.feature_maps import features
from bl_keras.models.preprocessing import preprocess_input
from bl_keras.models.registry import (OptionError, check_options, get, get_entry, list_models,
                                      register, register_model)
from bl_keras.models.residual_blocks import residual_blocks
from bl_keras.models.resnet import resnet_family
from bl_keras.models.shufflenet import shufflenet_v2

__all__ = ["OptionError", "check_options", "cifar_resnet", "decathlon_resnet", "features", "get", "get_entry",
           "list_models", "preprocess_input", "register", "register_model", "residual_blocks",
           "resnet_family", "shufflenet_v2", *_image_models]
