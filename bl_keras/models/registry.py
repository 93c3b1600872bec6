"""A registry of named models: trainer, profiler, converter and tests all take a model name.

Each entry keeps its builder and its preprocessing defaults (input size, crop ratio, mean/std),
so everything that feeds a model by name feeds it the same way.
"""

import dataclasses

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: object
    description: str = ""
    input_size: int = 224
    # Full input shape (H, W, C) of non-square inputs (speech: 64 mel bins x 49 frames x 3).
    input_shape: tuple = None
    crop_ratio: float = 0.875
    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD
    big_little: bool = False
    # Option names the builder takes beyond the common constructor signature (e.g. alpha, beta).
    options: tuple = ()

    def profile_shape(self, size=None):
        """The (H, W, C) input a profile uses: `input_shape`, or a square image of `size`."""
        if self.input_shape is not None:
            return tuple(self.input_shape)
        size = size or self.input_size
        return (size, size, 3)


_REGISTRY = {}


def register_model(entry):
    if entry.name in _REGISTRY:
        raise ValueError(f"Model {entry.name!r} is already registered")
    _REGISTRY[entry.name] = entry
    return entry


def list_models(pattern=None):
    """Sorted names of the registered models, optionally those containing `pattern`."""
    return sorted(n for n in _REGISTRY if pattern is None or pattern in n)


def get_entry(name):
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"Unknown model {name!r}. Valid names: {', '.join(list_models())}"
        ) from None


def get(name, **kwargs):
    """Build the model registered as `name`, passing `kwargs` to its builder."""
    return get_entry(name).builder(**kwargs)
