"""Any image model of the zoo as a KerasHub `FeaturePyramidBackbone` (paper Appendix A.6).

    backbone = PyramidBackbone("bl_resnet101", {"alpha": 2, "beta": 4})
    backbone.pyramid_outputs        # {"P2": stride 4, "P3": 8, "P4": 16, "P5": 32}
    backbone = PyramidBackbone.from_classifier(classifier, "bl_resnet101", alpha=2, beta=4)

`P<k>` is `bl_keras.models.features`' `C<k>` (the same layers, the same weights): the backbone
plugs into KerasHub's detectors (`keras_hub.models.RetinaNetBackbone(image_encoder=...)`). The
configuration is the registry name and its builder options, so a `.keras` file of a detector
rebuilds the backbone from the package's own layers (safe mode) and loads its weights.
"""

import keras

try:
    from keras_hub.models import FeaturePyramidBackbone
except ImportError as err:  # an optional dependency: say how to get it
    raise ImportError(f"bl_keras.detection needs KerasHub: pip install \"bl_keras[detection]\" "
                      f"({err})") from err

from bl_keras import models

register = keras.saving.register_keras_serializable(package="bl_keras")

LEVELS = ("C2", "C3", "C4", "C5")


@register
class PyramidBackbone(FeaturePyramidBackbone):
    """Feature pyramid P2-P5 of registered image model `model` built with `model_options`,
    for images of `image_shape` (height and width may be None: any size)."""

    def __init__(self, model="bl_resnet50", model_options=None, image_shape=(None, None, 3),
                 dtype=None, **kwargs):
        options = dict(model_options or {})
        for reserved in ("include_top", "features", "input_shape", "pooling", "classes"):
            if reserved in options:
                raise ValueError(f"model_options: {reserved} is set by PyramidBackbone")
        image_shape = tuple(image_shape)
        features = models.features(model, input_shape=image_shape, **options)
        inputs = keras.Input(image_shape, name="images")
        maps = features(inputs)
        outputs = {f"P{level[1]}": maps[level] for level in LEVELS}
        super().__init__(inputs=inputs, outputs=outputs, dtype=dtype, **kwargs)
        self.model_name = model
        self.model_options = options
        self.image_shape = image_shape
        self.features = features
        self.pyramid_outputs = outputs

    @classmethod
    def from_classifier(cls, classifier, model, image_shape=(None, None, 3), **model_options):
        """The backbone of registered model `model` (with `model_options`) carrying the
        weights of `classifier`, a model of that architecture (e.g. a `train.imagenet` run's
        or the converter's `.keras`, loaded); its head is dropped."""
        backbone = cls(model, model_options, image_shape=image_shape)
        trained = models.features(classifier)
        ours = backbone.features
        if [w.shape for w in ours.weights] != [w.shape for w in trained.weights]:
            raise ValueError(f"{classifier.name} does not have the layers of {model} with "
                             f"{model_options or 'its default options'}")
        ours.set_weights(trained.get_weights())
        return backbone

    def get_config(self):
        return {**super().get_config(), "model": self.model_name,
                "model_options": dict(self.model_options), "image_shape": self.image_shape}
