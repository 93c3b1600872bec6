"""Shared pieces of the conversion tests: torch (required under CI), checkpoints, the CLI."""

import collections
import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]


def import_torch():
    """The torch module; a skip locally when it is missing, a failure under CI=true.

    Call at module level (`torch = import_torch()`): the tests that write real PyTorch files and
    run the PyTorch reference must not silently vanish from CI.
    """
    if os.environ.get("CI", "").lower() == "true":
        try:
            import torch
        except ImportError as err:
            pytest.fail(f"torch is required under CI=true (pip install torch): {err}",
                        pytrace=False)
        return torch
    return pytest.importorskip("torch", reason="torch is not installed (a test requirement)",
                               exc_type=ImportError)


def save_checkpoint(torch, state_dict, path, legacy=False, prefix="module.", wrap=True):
    """Save `state_dict` as the released files were: `module.` names inside a training dict."""
    named = collections.OrderedDict((prefix + k, v) for k, v in state_dict.items())
    obj = {"epoch": 110, "arch": "test", "state_dict": named, "best_top1": torch.tensor(77.5),
           "optimizer": {"state": {}, "param_groups": [{"lr": 0.0, "nesterov": True}]}} \
        if wrap else named
    torch.save(obj, path, _use_new_zipfile_serialization=not legacy)
    return path


def run_convert(*args):
    """`python -m bl_keras.convert ARGS` in a subprocess (as a user runs it)."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "bl_keras.convert", *map(str, args)], cwd=REPO,
                          env=env, capture_output=True, text=True)


def converted_reference(torch, directory, name="bl_resnet50", classes=10, size=64, seed=4):
    """A random PyTorch reference model `name` saved as a released checkpoint in `directory`
    and read back by the converter: (the PyTorch model, the Keras model)."""
    from bl_keras import convert
    from tests.convert import torch_reference

    model = torch_reference.randomize(torch_reference.build(name, classes=classes), seed=seed,
                                      calibration_size=size)
    path = save_checkpoint(torch, model.state_dict(), pathlib.Path(directory) / f"{name}.pth.tar",
                           legacy=True)
    return model, convert.from_checkpoint(name, path, classes=classes,
                                          classifier_activation=None)
