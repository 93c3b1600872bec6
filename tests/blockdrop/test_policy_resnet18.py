"""The ResNet-10 policy started from a torchvision ResNet-18 checkpoint, as the authors do
(`load_weights_to_flatresnet`): its stem and the first block of each stage, the rest unused."""

import keras
import numpy as np
import pytest

from bl_keras import blockdrop
from bl_keras.convert import CheckpointMismatchError
from tests.convert.helpers import import_torch, save_checkpoint

torch = import_torch()
nn = torch.nn
F = torch.nn.functional


class BasicBlock(nn.Module):
    """torchvision's basic block (its module names: conv1/bn1, conv2/bn2, downsample.0/1)."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                            nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class ResNet(nn.Module):
    """torchvision's ResNet with basic blocks: [2, 2, 2, 2] is ResNet-18, [1, 1, 1, 1] the
    authors' ResNet-10; `features` stops before the pooling, as the policy's layer4 does."""

    def __init__(self, blocks):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        cin = 64
        for i, (cout, stride, count) in enumerate(zip((64, 128, 256, 512), (1, 2, 2, 2), blocks)):
            layer = [BasicBlock(cin, cout, stride)] + [BasicBlock(cout, cout, 1)
                                                      for _ in range(count - 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*layer))
            cin = cout
        self.fc = nn.Linear(512, 1000)

    def features(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        for i in range(1, 5):
            x = getattr(self, f"layer{i}")(x)
        return x


def random_resnet18(seed=0):
    torch.manual_seed(seed)
    model = ResNet([2, 2, 2, 2])
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):  # statistics and affine terms away from 0 / 1
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 1.5)
    return model.eval()


def test_policy_equals_resnet18s_first_blocks(tmp_path):
    resnet18 = random_resnet18()
    path = save_checkpoint(torch, resnet18.state_dict(), tmp_path / "resnet18.pth", prefix="",
                           wrap=False)  # torchvision's files hold the bare state dict
    resnet10 = ResNet([1, 1, 1, 1]).eval()
    # The authors' rule: layer{i}.0 and the stem; layer{i}.1 and fc have no place.
    resnet10.load_state_dict(resnet18.state_dict(), strict=False)

    policy = blockdrop.imagenet_policy(33)
    head = policy.get_layer("probabilities").get_weights()
    blockdrop.start_from_resnet18(policy, path)
    features = keras.Model(policy.input, policy.get_layer("layer4").output)
    images = np.random.default_rng(1).normal(size=(2, 224, 224, 3)).astype("float32")
    ours = features(images, training=False).numpy()
    with torch.no_grad():
        x = F.avg_pool2d(torch.from_numpy(images.transpose(0, 3, 1, 2)), 2)
        theirs = resnet10.features(x).numpy().transpose(0, 2, 3, 1)
    assert ours.shape == theirs.shape == (2, 4, 4, 512)
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4 * np.abs(theirs).max())
    for before, after in zip(head, policy.get_layer("probabilities").get_weights()):
        np.testing.assert_array_equal(before, after)  # the K-way head keeps its start


def test_a_checkpoint_without_a_policy_tensor_assigns_nothing():
    state = {k: v.numpy() for k, v in random_resnet18().state_dict().items()}
    del state["layer4.0.conv2.weight"]
    policy = blockdrop.imagenet_policy(33)
    before = [w.copy() for w in policy.get_weights()]
    with pytest.raises(CheckpointMismatchError, match="layer4.0.conv2.weight"):
        blockdrop.start_from_resnet18(policy, state)
    for old, new in zip(before, policy.get_weights()):
        np.testing.assert_array_equal(old, new)


def test_only_the_resnet10_policy_starts_from_resnet18():
    with pytest.raises(ValueError, match="not the ResNet-10 policy"):
        blockdrop.start_from_resnet18(blockdrop.cifar_policy(15), {})
