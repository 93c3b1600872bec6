"""Params and MACs of every model of the paper's Tables 1-2 equal the paper's values."""

import json
import subprocess
import sys

import keras
import numpy as np
import pytest

from bl_keras import models, paper, profiling

ROWS = paper.TABLE1 + paper.TABLE2


def _exact(row):
    return row.model.startswith("bl_")


@pytest.fixture(scope="module")
def built():
    cache = {}

    def get(row):
        key = (row.model, tuple(sorted(row.options.items())))
        if key not in cache:
            cache.clear()  # keep one model alive at a time
            cache[key] = models.get(row.model, **row.options)
        return cache[key]

    return get


@pytest.mark.parametrize("row", ROWS, ids=[f"{r.label}@{r.size}" for r in ROWS])
def test_params_and_macs_match_paper(row, built):
    result = profiling.profile(built(row), row.size)
    if _exact(row):
        # The bL models are the released architecture: exact to the paper's rounding.
        assert abs(result.mparams - row.mparams) <= 0.01, result
        assert abs(result.gmacs - row.gmacs) <= 0.01, result
    else:
        assert result.mparams == pytest.approx(row.mparams, rel=0.01)
        assert result.gmacs == pytest.approx(row.gmacs, rel=0.01)


def test_exact_counts_of_bl_resnet50():
    model = models.bl_resnet50()
    result = profiling.profile(model, 224)
    assert result.params == 26_694_568
    assert result.macs == 2_856_058_880
    # Keras' own count adds the BatchNorm moving statistics, which the paper does not count.
    assert model.count_params() == 26_754_728


def test_mac_counter_on_hand_computed_model():
    inputs = keras.Input((10, 10, 8))
    x = keras.layers.Conv2D(16, 3, padding="same", use_bias=False)(inputs)  # 100*9*8*16
    x = keras.layers.Conv2D(16, 3, strides=2, groups=4, padding="same")(x)  # 25*9*4*16
    x = keras.layers.DepthwiseConv2D(3, padding="same")(x)  # 25*9*16
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(5)(x)  # 16*5
    model = keras.Model(inputs, x)
    expected = 100 * 9 * 8 * 16 + 25 * 9 * 4 * 16 + 25 * 9 * 16 + 16 * 5
    assert profiling.count_macs(model, (10, 10, 8)) == expected
    trainable = 9 * 8 * 16 + (9 * 4 * 16 + 16) + (9 * 16 + 16) + 2 * 16 + (16 * 5 + 5)
    assert profiling.count_params(model) == trainable


def _run_cli(*args):
    return subprocess.run([sys.executable, "-m", "bl_keras.profiling", *args],
                          capture_output=True, text=True)


def test_profile_cli_json():
    proc = _run_cli("--model", "bl_resnet50", "--alpha", "4", "--beta", "2", "--size", "224",
                    "--json")
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout.strip().splitlines()[-1])
    assert record["model"] == "bl_resnet50" and record["input_size"] == 224
    assert round(record["params"] / 1e6, 2) == 26.31
    assert round(record["macs"] / 1e9, 2) == 2.49


def test_profile_cli_rejects_unknown_model_and_bad_option():
    proc = _run_cli("--model", "resnet51", "--json")
    assert proc.returncode != 0 and "resnet51" in proc.stderr and "bl_resnet50" in proc.stderr
    proc = _run_cli("--model", "resnet50", "--alpha", "2")
    assert proc.returncode != 0 and "--alpha" in proc.stderr


def test_profile_cli_table_one():
    proc = _run_cli("--tables", "1")
    assert proc.returncode == 0, proc.stderr
    lines = [l for l in proc.stdout.splitlines() if l.startswith("bL-ResNet-50 (a=2, b=4)")]
    assert len(lines) == 1
    numbers = [float(v) for v in lines[0].split()[-7:]]
    # size, params, paper, diff, GMACs, paper, diff
    assert numbers[1] == pytest.approx(26.69, abs=0.005) and numbers[4] == pytest.approx(2.86, abs=0.005)
    assert np.isclose(numbers[2], 26.69) and np.isclose(numbers[5], 2.85)
