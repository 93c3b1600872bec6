import os
import pathlib

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]


def parity_dir():
    """Reference vectors: $BL_KERAS_PARITY_DIR, else ../shared/parity beside the checkout."""
    env = os.environ.get("BL_KERAS_PARITY_DIR")
    return pathlib.Path(env) if env else REPO.parent / "shared" / "parity"


def require_parity_file(name):
    """Path of a parity file; a skip locally when absent, a failure under CI=true."""
    path = parity_dir() / name
    if not path.exists():
        message = f"parity file {path} not found (set BL_KERAS_PARITY_DIR)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def bl_resnet50_reference():
    """The released bL-ResNet-50 (a2 b4) state dict and its outputs (see shared parity README)."""
    data = np.load(require_parity_file("bl_resnet50_a2_b4.npz"))
    state_dict = {
        k[len("state_dict/"):]: data[k] for k in data.files if k.startswith("state_dict/")
    }
    return state_dict, {k: data[k] for k in data.files if not k.startswith("state_dict/")}


@pytest.fixture(autouse=True)
def _fresh_keras_session():
    import keras

    yield
    keras.backend.clear_session()
    keras.config.set_dtype_policy("float32")
