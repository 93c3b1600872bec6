"""The speech acoustic models of Table 3 / Table 11."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from bl_keras import layers, models, paper, profiling
from bl_keras.speech.models import little_convs


@pytest.mark.parametrize("row", paper.TABLE3, ids=[r.label for r in paper.TABLE3])
def test_gmacs_within_5_percent_of_table3_and_one_output_frame(row):
    model = models.get(row.model, **row.options)
    result = profiling.profile(model, row.size)
    assert result.gmacs == pytest.approx(row.gmacs, rel=0.05)
    out = model(np.zeros((2, 64, 49, 3), "float32"))
    assert tuple(out.shape) == (2, 1, 32000)  # time 49 -> 1: one centre-frame prediction


def test_exact_counts_of_the_baseline():
    result = profiling.profile(models.get("speech.resnet22"), (64, 49, 3))
    assert result.macs == 1_108_834_304  # paper: 1.11 G
    assert result.params == 30_187_584
    # Output layer 512 x 32000 + bias alone: the paper's ~3M params cannot include it.
    assert result.params > 512 * 32000


@pytest.mark.parametrize("name,options", [("speech.resnet22", {}),
                                          ("speech.bl_resnet22", {"alpha": 2, "beta": 3}),
                                          ("speech.bl_pyr_resnet22", {})])
def test_longer_inputs_give_one_prediction_per_extra_frame(name, options):
    model = models.get(name, num_states=10, **options)
    out = model(np.random.default_rng(0).normal(size=(1, 64, 60, 3)).astype("float32"))
    assert tuple(out.shape) == (1, 12, 10)


def test_frames_depend_only_on_their_49_frame_window():
    # No time padding: frame t of a long input equals the model on the window around it.
    model = models.get("speech.bl_resnet22", num_states=7, alpha=4, beta=2)
    x = np.random.default_rng(1).normal(size=(1, 64, 53, 3)).astype("float32")
    full = keras.ops.convert_to_numpy(model(x))
    for t in range(5):
        window = keras.ops.convert_to_numpy(model(x[:, :, t:t + 49]))
        np.testing.assert_allclose(full[:, t], window[:, 0], atol=1e-4)


@pytest.mark.parametrize("beta,stage_convs,expected", [(1, [2, 2, 1], [2, 2, 1]),
                                                       (2, [2, 2, 1], [2, 1]),
                                                       (3, [2, 2, 1], [2]),
                                                       (2, [2, 2], [2]), (3, [2, 2], [2]),
                                                       (1, [2, 2], [2, 2])])
def test_little_branch_depth_rule(beta, stage_convs, expected):
    assert little_convs(stage_convs, beta) == expected


def test_alpha2_beta3_does_not_branch_in_the_last_stage():
    model = models.get("speech.bl_resnet22", alpha=2, beta=3, num_states=5)
    names = [layer.name for layer in model.layers]
    assert "layer4" in names and "layer4_big" not in names and "layer3_big" in names


def test_basic_block_crops_the_shortcut_in_time():
    block = layers.BasicBlock(4, strides=(2, 1), padding=("symmetric", "valid"))
    x = np.random.default_rng(2).normal(size=(1, 8, 9, 4)).astype("float32")
    out = block(x)
    assert tuple(out.shape) == (1, 4, 5, 4)  # frequency halved, time 9 - 2 * 2


@pytest.mark.parametrize("name,options", [("speech.bl_resnet22", {"merge": "concat"}),
                                          ("speech.bl_pyr_resnet22", {})])
def test_speech_models_save_and_load(name, options, tmp_path):
    model = models.get(name, num_states=11, **options)
    x = np.random.default_rng(3).normal(size=(2, 64, 49, 3)).astype("float32")
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = tf.keras.models.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_profile_cli_speech_json():
    import json
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "bl_keras.profiling", "--model",
                           "speech.bl_resnet22", "--alpha", "4", "--beta", "1", "--merge",
                           "concat", "--json"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout.strip().splitlines()[-1])
    assert record["input_size"] == [64, 49, 3]
    assert record["macs"] / 1e9 == pytest.approx(0.70, rel=0.05)
