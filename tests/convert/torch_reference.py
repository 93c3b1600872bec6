"""A compact PyTorch bL-ResNet / bL-ResNeXt / bL-SE-ResNeXt, for conversion parity tests only.

Written from the released structure (WORKSPACE_NOTES.md, "Architecture"), independently of the
Keras models; module names follow the released state dicts
(shared/parity/official_state_dict_manifest.json), which a test checks,
and the released bL-ResNet-50 outputs in shared/parity prove the forward pass.
"""

import torch
import torch.nn.functional as F
from torch import nn

DEPTHS = {50: (3, 4, 6, 3), 101: (4, 8, 18, 3), 152: (5, 12, 30, 3)}

# name: (depth, cardinality, base width, squeeze-excite)
ARCHS = {
    "bl_resnet50": (50, 1, 64, False),
    "bl_resnet101": (101, 1, 64, False),
    "bl_resnet152": (152, 1, 64, False),
    "bl_resnext50_32x4d": (50, 32, 4, False),
    "bl_resnext101_32x4d": (101, 32, 4, False),
    "bl_resnext101_64x4d": (101, 64, 4, False),
    "bl_seresnext50_32x4d": (50, 32, 4, True),
    "bl_seresnext101_32x4d": (101, 32, 4, True),
}


def conv(cin, cout, kernel, stride=1, groups=1):
    return nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False)


class SqueezeExcite(nn.Module):
    def __init__(self, channels, reduction=16):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1)

    def forward(self, x):
        scale = torch.sigmoid(self.fc2(F.relu(self.fc1(F.adaptive_avg_pool2d(x, 1)))))
        return x * scale


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (stride, groups) -> 1x1 [-> SE] + shortcut [-> ReLU]."""

    def __init__(self, cin, cout, stride=1, cardinality=1, base_width=64, se=False,
                 last_relu=True):
        super().__init__()
        width = cardinality * (cout * base_width // 64 // 4)
        self.conv1, self.bn1 = conv(cin, width, 1), nn.BatchNorm2d(width)
        self.conv2 = conv(width, width, 3, stride, groups=cardinality)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3, self.bn3 = conv(width, cout, 1), nn.BatchNorm2d(cout)
        self.se_layer = SqueezeExcite(cout) if se else None
        shortcut = [nn.AvgPool2d(3, 2, 1)] if stride != 1 else []  # counts the padded zeros
        if cin != cout:
            shortcut += [conv(cin, cout, 1), nn.BatchNorm2d(cout)]
        self.downsample = nn.Sequential(*shortcut) if shortcut else None
        self.last_relu = last_relu

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.se_layer is not None:
            out = self.se_layer(out)
        out = out + (x if self.downsample is None else self.downsample(x))
        return F.relu(out) if self.last_relu else out


def stage(cin, cout, blocks, stride=1, last_relu=True, **block):
    layers = [Bottleneck(cin if i == 0 else cout, cout, stride if i == 0 else 1,
                         last_relu=last_relu if i == blocks - 1 else True, **block)
              for i in range(blocks)]
    return nn.Sequential(*layers)


class BigLittleModule(nn.Module):
    def __init__(self, cin, cout, blocks, alpha, beta, stride, cardinality, base_width, se):
        super().__init__()
        block = dict(cardinality=cardinality, base_width=base_width, se=se)
        # The little branch of a ResNeXt keeps the per-group width: fewer, wider groups.
        thin = dict(block, cardinality=cardinality // alpha, base_width=base_width * alpha) \
            if cardinality > 1 else block
        self.big = stage(cin, cout, blocks - 1, 2, last_relu=False, **block)
        self.little = stage(cin, cout // alpha, max(1, blocks // beta - 1), **thin)
        self.little_e = nn.Sequential(conv(cout // alpha, cout, 1), nn.BatchNorm2d(cout))
        self.fusion = stage(cout, cout, 1, stride, **block)

    def forward(self, x):
        little = self.little_e(self.little(x))
        # The released rule: nearest, source index floor(dst * in / out).
        big = F.interpolate(self.big(x), size=little.shape[-2:], mode="nearest")
        return self.fusion(F.relu(big + little))


class BigLittleNet(nn.Module):
    def __init__(self, depth, cardinality=1, base_width=64, se=False, alpha=2, beta=4,
                 classes=1000):
        super().__init__()
        depths, little = DEPTHS[depth], 64 // alpha
        self.conv1, self.bn1 = conv(3, 64, 7, 2), nn.BatchNorm2d(64)
        self.b_conv0, self.bn_b0 = conv(64, 64, 3, 2), nn.BatchNorm2d(64)
        self.l_conv0, self.bn_l0 = conv(64, little, 3), nn.BatchNorm2d(little)
        self.l_conv1, self.bn_l1 = conv(little, little, 3, 2), nn.BatchNorm2d(little)
        self.l_conv2, self.bn_l2 = conv(little, 64, 1), nn.BatchNorm2d(64)
        self.bl_init, self.bn_bl_init = conv(64, 64, 1), nn.BatchNorm2d(64)
        block = dict(cardinality=cardinality, base_width=base_width, se=se)
        self.layer1 = BigLittleModule(64, 256, depths[0], alpha, beta, 2, **block)
        self.layer2 = BigLittleModule(256, 512, depths[1], alpha, beta, 2, **block)
        self.layer3 = BigLittleModule(512, 1024, depths[2], alpha, beta, 1, **block)
        self.layer4 = stage(1024, 2048, depths[3], 2, **block)
        self.fc = nn.Linear(2048, classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        big = self.bn_b0(self.b_conv0(x))
        little = F.relu(self.bn_l0(self.l_conv0(x)))
        little = F.relu(self.bn_l1(self.l_conv1(little)))
        little = self.bn_l2(self.l_conv2(little))
        x = F.relu(self.bn_bl_init(self.bl_init(F.relu(big + little))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def build(name, alpha=2, beta=4, classes=1000):
    depth, cardinality, base_width, se = ARCHS[name]
    return BigLittleNet(depth, cardinality, base_width, se, alpha, beta, classes)


@torch.no_grad()
def randomize(model, seed, calibration_size=224):
    """Random weights and BatchNorm parameters such that no layer is an identity.

    Gammas ~ U(0.5, 1.5), except the last BN of each block (zero-initialised in training):
    U(0.1, 0.4). With U(0.5, 1.5) there too, every block adds as much as it receives and float32
    rounding grows through the residual stream: PyTorch float32 and float64 then differ by 1.3e-3
    for bL-ResNet-152, which no 1e-4 check survives (3e-5 with U(0.2, 0.6), 7e-6 with these).
    Betas ~ U(-0.2, 0.2). The running statistics are those of one random batch (training mode),
    so they are neither 0/1 nor alike, and activations stay O(1) through 150 layers; perturbing
    them further compounds to logits of 1e3 and more.
    """
    generator = torch.Generator().manual_seed(seed)

    def uniform(tensor, low, high):
        tensor.copy_(torch.rand(tensor.shape, generator=generator) * (high - low) + low)

    batch_norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            fan_out = module.out_channels * module.kernel_size[0] * module.kernel_size[1]
            module.weight.copy_(torch.randn(module.weight.shape, generator=generator)
                                * (2.0 / fan_out) ** 0.5)
            if module.bias is not None:
                uniform(module.bias, -0.1, 0.1)
        elif isinstance(module, nn.Linear):
            bound = module.in_features ** -0.5
            uniform(module.weight, -bound, bound)
            uniform(module.bias, -bound, bound)
    last = {id(m.bn3) for m in model.modules() if isinstance(m, Bottleneck)}
    for bn in batch_norms:
        uniform(bn.weight, *((0.1, 0.4) if id(bn) in last else (0.5, 1.5)))
        uniform(bn.bias, -0.2, 0.2)
        bn.reset_running_stats()
        bn.momentum = None  # a cumulative average: one batch gives its exact statistics
    model.train()
    model(torch.randn((2, 3, calibration_size, calibration_size), generator=generator))
    model.eval()
    for bn in batch_norms:
        bn.momentum = 0.1
        bn.num_batches_tracked.fill_(int(torch.randint(1, 10**6, (1,), generator=generator)))
    return model
