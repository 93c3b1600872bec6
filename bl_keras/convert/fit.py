"""Which convertible architectures, with which alpha / beta, a checkpoint's tensors fit.

Every model of `convertible_models()` is tried at the alpha / beta of the paper's bL-ResNet-50
variants (`OPTION_GRID`), by comparing tensor names and shapes (`expected_shapes`); no model is
built. The speech models, ShuffleNets and low-resolution baselines have no PyTorch mapping.
"""

import dataclasses

import numpy as np

from bl_keras.convert.expected_shapes import convertible_models, spec_state_dict_shapes
from bl_keras.models import specs

# (alpha, beta) of the paper's bL-ResNet-50 variants; the released files are all (2, 4).
OPTION_GRID = ((2, 4), (2, 2), (4, 2), (4, 4))
BN_COUNTER = ".num_batches_tracked"


@dataclasses.dataclass(frozen=True)
class Candidate:
    """An architecture (and its options) scored against a checkpoint."""

    name: str
    alpha: int = None  # None for plain models
    beta: int = None
    matching: int = 0  # checkpoint tensors equal in name and shape to the model's
    expected: int = 0  # tensors the model takes
    given: int = 0  # tensors of the checkpoint, BatchNorm counters aside

    @property
    def exact(self):
        return self.matching == self.expected == self.given

    @property
    def arch(self):
        """The `--arch` value that selects this architecture and its options."""
        return self.name if self.alpha is None else f"{self.name}_a{self.alpha}_b{self.beta}"

    def describe(self):
        options = "" if self.alpha is None else f" with alpha={self.alpha}, beta={self.beta}"
        return f"{self.name}{options} (--arch {self.arch})"


def checkpoint_shapes(state_dict):
    """{name: shape} of a state dict (`module.` already stripped), BatchNorm counters aside."""
    return {name: tuple(int(d) for d in np.shape(value)) for name, value in state_dict.items()
            if not name.endswith(BN_COUNTER)}


def _classes(shapes):
    fc = shapes.get("fc.weight")
    return fc[0] if fc is not None and len(fc) == 2 else 1000


def _options(name):
    return OPTION_GRID if specs.IMAGE_MODELS[name][2] else ((None, None),)


def score_architectures(state_dict):
    """A `Candidate` for every convertible model and option of the grid, best fit first."""
    given = checkpoint_shapes(state_dict)
    classes = _classes(given)
    candidates = []
    for name in convertible_models():
        for alpha, beta in _options(name):
            expected = spec_state_dict_shapes(name, alpha or 2, beta or 4, classes)
            matching = sum(given.get(tensor) == shape for tensor, shape in expected.items())
            candidates.append(Candidate(name, alpha, beta, matching, len(expected), len(given)))
    # Most tensors matching first; among equals, the model closest in size.
    return sorted(candidates, key=lambda c: (-c.matching, abs(c.expected - c.given), c.arch))


@dataclasses.dataclass(frozen=True)
class Suggestion:
    exact: tuple  # the candidates the checkpoint fits exactly
    closest: tuple  # when none does: the best few by matching tensors


def suggest_architectures(state_dict, closest=3):
    """The architectures `state_dict` fits exactly, or else the `closest` nearest ones."""
    ranked = score_architectures(state_dict)
    exact = tuple(c for c in ranked if c.exact)
    return Suggestion(exact, () if exact else tuple(c for c in ranked[:closest] if c.matching))
