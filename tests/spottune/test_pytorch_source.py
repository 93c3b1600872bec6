"""SpotTune from a released-format PyTorch checkpoint: the converter's bL-ResNet-50 as the
source network; its frozen path equals the PyTorch model, the fine-tuned copies start equal."""

import numpy as np
import tensorflow as tf

from bl_keras.spottune import spottune_network
from tests.convert.helpers import converted_reference, import_torch

torch = import_torch()

SIZE = 64


def test_spottune_on_a_converted_pytorch_network(tmp_path):
    model, pretrained = converted_reference(torch, tmp_path, size=SIZE, seed=5)
    path = tmp_path / "pretrained.keras"
    pretrained.save(path)  # what `python -m bl_keras.convert --output` writes
    network = spottune_network(tf.keras.models.load_model(path, safe_mode=True), classes=10,
                               image_size=SIZE)
    assert network.num_blocks == 19
    # The new head set to the PyTorch classifier, so that logits are comparable.
    network.tuned.layers[-1].set_weights([model.fc.weight.detach().numpy().T,
                                          model.fc.bias.detach().numpy()])
    images = np.random.default_rng(1).normal(size=(3, SIZE, SIZE, 3)).astype("float32")
    with torch.no_grad():
        expected = model(torch.from_numpy(images.transpose(0, 3, 1, 2))).numpy()
    k = network.num_blocks
    mixed = (np.random.default_rng(2).random((3, k)) > 0.5).astype("float32")
    for policy in (np.zeros((3, k), "float32"), np.ones((3, k), "float32"), mixed):
        logits = network.run(tf.constant(images), tf.constant(policy), training=False).numpy()
        assert np.abs(logits - expected).max() <= 1e-4
