import keras
import pytest


@pytest.fixture(autouse=True, scope="module")
def _fresh_keras_session():
    """Overrides tests/conftest.py's per-test reset with one per module: the networks here are
    module fixtures, and a `clear_session()` (with its garbage collection) after each of ~70
    small tests cost ~25 s of the folder's runtime. No test here changes the dtype policy."""
    yield
    keras.backend.clear_session()
    keras.config.set_dtype_policy("float32")
