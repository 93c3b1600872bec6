"""Telling logits from probabilities, and class names."""

import keras
import pytest

from bl_keras.export.head import class_names, outputs_logits
from tests.export.helpers import small_model


def dense_model(activation):
    inputs = keras.Input((4,))
    return keras.Model(inputs, keras.layers.Dense(3, activation=activation)(inputs))


def test_reads_the_classifier_activation():
    assert outputs_logits(small_model()) is False  # classifier_activation="softmax"
    assert outputs_logits(small_model(classifier_activation=None)) is True
    inputs = keras.Input((4,))
    softmax_layer = keras.Model(inputs, keras.layers.Softmax()(keras.layers.Dense(3)(inputs)))
    assert outputs_logits(softmax_layer) is False


def test_other_activations_need_an_explicit_kind():
    with pytest.raises(ValueError, match="activation 'sigmoid'"):
        outputs_logits(dense_model("sigmoid"))
    assert outputs_logits(dense_model("sigmoid"), "probabilities") is False
    assert outputs_logits(dense_model("softmax"), "logits") is True


def test_a_backbone_is_not_a_classifier():
    with pytest.raises(ValueError, match="include_top=True"):
        outputs_logits(small_model(include_top=False))


def test_class_names(tmp_path):
    assert class_names(3) == ["0", "1", "2"]
    labels = tmp_path / "labels.txt"
    labels.write_text("tench\ngoldfish\ngreat white shark\n\n")
    assert class_names(3, labels) == ["tench", "goldfish", "great white shark"]
    with pytest.raises(ValueError, match="has 3 labels, the model 4 classes"):
        class_names(4, labels)
