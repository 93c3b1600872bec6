"""Every kind of `.keras` file the package writes loads in a fresh process after `import bl_keras`
alone (safe mode), and computes what the saved model computed."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import bl_keras
from bl_keras import slimmable
from tests.conftest import REPO

SMALL_RESNET = dict(stage_depths=(2, 2, 2, 2), stage_filters=(32, 32, 64, 64), stem_filters=8)


def _run_fresh(code):
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _registered_classes(import_everything):
    return set(_run_fresh(f"""
        import importlib, json, pkgutil
        import keras
        import bl_keras
        if {import_everything}:
            for module in pkgutil.walk_packages(bl_keras.__path__, "bl_keras."):
                if not module.name.endswith("__main__"):
                    importlib.import_module(module.name)
        names = keras.saving.get_custom_objects()
        print(json.dumps(sorted(n for n in names if n.startswith("bl_keras>"))))
    """))


def test_import_bl_keras_registers_every_serializable_class():
    after_import = _registered_classes(False)
    assert {"bl_keras>SlimmableNetwork", "bl_keras>BigLittleModule",
            "bl_keras>WarmupSchedule"} <= after_import
    assert _registered_classes(True) - after_import == set()


def _models():
    image = bl_keras.models.bl_resnet50(classes=4, input_shape=(32, 32, 3), **SMALL_RESNET)
    return {
        "bl_resnet": (image, (2, 32, 32, 3)),
        "bl_resnet_concat": (bl_keras.models.bl_resnet50(
            classes=4, input_shape=(32, 32, 3), merge="concat", **SMALL_RESNET),
            (2, 32, 32, 3)),
        "bl_resnet_two_merges": (bl_keras.models.bl_resnet50(
            classes=4, input_shape=(32, 32, 3), num_merges=2, **SMALL_RESNET), (2, 32, 32, 3)),
        "bl_shufflenet": (bl_keras.models.bl_shufflenet_v2_x1_0(
            classes=4, input_shape=(64, 64, 3)), (2, 64, 64, 3)),
        "detection_features": (bl_keras.models.features(image), (1, 32, 32, 3)),
        "speech": (bl_keras.models.get("speech.bl_resnet22", alpha=2, beta=3,
                                       widths=[8, 8, 16, 16], head_channels=16, num_states=5,
                                       input_shape=(64, 49, 3)), (2, 64, 49, 3)),
        "slimmable": (slimmable.get("bl_resnet50", classes=4,
                                    stage_depths=(2, 2, 2, 2),
                                    stage_filters=(64, 128, 256, 512), stem_filters=16),
                      (2, 32, 32, 3)),
    }


def _summary(outputs):
    flat = outputs.values() if isinstance(outputs, dict) else [outputs]
    return [float(np.asarray(o, np.float64).sum()) for o in flat]


def test_every_kind_of_keras_file_loads_in_a_fresh_process(tmp_path):
    expected = {}
    for kind, (model, shape) in _models().items():
        x = np.random.default_rng(0).normal(size=shape).astype("float32")
        np.save(tmp_path / f"{kind}.npy", x)
        model.save(tmp_path / f"{kind}.keras")
        expected[kind] = _summary(model(x, training=False))
    loaded = _run_fresh(f"""
        import json, pathlib
        import keras, numpy as np
        import bl_keras
        root = pathlib.Path({str(tmp_path)!r})
        result = {{}}
        for path in sorted(root.glob("*.keras")):
            model = keras.models.load_model(path, safe_mode=True)
            out = model(np.load(path.with_suffix(".npy")), training=False)
            flat = out.values() if isinstance(out, dict) else [out]
            result[path.stem] = [float(np.asarray(o, np.float64).sum()) for o in flat]
        print(json.dumps(result))
    """)
    assert sorted(loaded) == sorted(expected)
    for kind, sums in expected.items():
        np.testing.assert_allclose(loaded[kind], sums, rtol=1e-4, atol=1e-4, err_msg=kind)
