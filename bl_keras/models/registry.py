"""A registry of named models: trainer, profiler, converter and tests all take a model name.

Each entry keeps its builder and its preprocessing defaults (input size, crop ratio, mean/std),
so everything that feeds a model by name feeds it the same way, and the builder options that
choose a variant of it (`options`): the one declaration the builders, the trainer's flags and
the profile CLI check options against (`check_options`).
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
    # Options that choose a variant of the model (alpha, beta, merge, stage widths, ...): of the
    # options any registered model declares, the builder takes these and rejects the others.
    options: tuple = ()

    def profile_shape(self, size=None):
        """The (H, W, C) input a profile uses: `input_shape`, or a square image of `size`."""
        if self.input_shape is not None:
            return tuple(self.input_shape)
        size = size or self.input_size
        return (size, size, 3)


class OptionError(TypeError):
    """A builder option the model does not take (a TypeError, as for any unexpected keyword);
    `option` names it."""

    def __init__(self, model, option, accepted):
        super().__init__(f"{option} does not apply to {model} (its options: "
                         f"{', '.join(accepted) or 'none'})")
        self.model = model
        self.option = option


_REGISTRY = {}


def register_model(entry):
    if entry.name in _REGISTRY:
        raise ValueError(f"Model {entry.name!r} is already registered")
    _REGISTRY[entry.name] = entry
    return entry


def register(name=None, **metadata):
    """Decorator: register the builder as `name` (default: the function's name) with the
    `ModelEntry` fields in `metadata`."""

    def decorate(builder):
        register_model(ModelEntry(name=name or builder.__name__, builder=builder, **metadata))
        return builder

    return decorate


def declared_options():
    """Every option some registered model declares (the options that choose variants)."""
    return {option for entry in _REGISTRY.values() for option in entry.options}


def check_options(name, options):
    """Raise `OptionError` for the first of `options` (names, in their order) that chooses a
    variant model `name` does not have; options no model declares (include_top, norm, ...) pass
    through."""
    entry = get_entry(name)
    declared = declared_options()
    foreign = [option for option in options
               if option in declared and option not in entry.options]
    if foreign:
        raise OptionError(name, foreign[0], entry.options)


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
    """Build the model registered as `name`, passing `kwargs` to its builder (after
    `check_options`)."""
    check_options(name, kwargs)
    return get_entry(name).builder(**kwargs)
