"""Table 10's cost side: Faster R-CNN + FPN MACs by hand on a small input, and the paper's
figures against ours (the backbones' difference; the heads without the RPN's 3x3 convolution)."""

import pytest

from bl_keras import paper
from bl_keras.detection.cost import faster_rcnn_fpn_macs
from bl_keras.profiling.__main__ import main


def test_heads_by_hand_on_a_small_input():
    # ResNet-50 on 64x96: C2-C5 at 16x24, 8x12, 4x6, 2x3 (256-2048 channels), P6 1x2.
    cost = faster_rcnn_fpn_macs("resnet50", (64, 96, 3), num_classes=4, proposals=10)
    positions = [16 * 24, 8 * 12, 4 * 6, 2 * 3, 1 * 2]
    lateral = sum(p * c * 256 for p, c in zip(positions, (256, 512, 1024, 2048)))
    assert cost.fpn == lateral + sum(positions[:4]) * 9 * 256 * 256
    assert cost.rpn_conv == sum(positions) * 9 * 256 * 256
    assert cost.rpn_predictors == sum(positions) * 256 * (3 + 12)
    assert cost.roi_head == 10 * (7 * 7 * 256 * 1024 + 1024 * 1024 + 1024 * (5 + 20))
    assert cost.total == cost.backbone + cost.fpn + cost.rpn_conv + cost.rpn_predictors \
        + cost.roi_head


@pytest.fixture(scope="module")
def table10():
    return [(row, faster_rcnn_fpn_macs(row.model, row.image_shape, row.num_classes,
                                       **row.options)) for row in paper.TABLE10]


def test_backbone_difference_is_the_papers(table10):
    # The heads are the same for both backbones: the papers' difference is the backbones'.
    for (plain, p_cost), (bl, b_cost) in zip(table10[::2], table10[1::2]):
        ours = (p_cost.backbone - b_cost.backbone) / 1e9
        assert ours == pytest.approx(plain.gmacs - bl.gmacs, rel=3e-3)
        assert p_cost.heads == b_cost.heads


def test_paper_totals_leave_out_the_rpn_convolution(table10):
    # Without the RPN's shared 3x3 convolution our detector is within 2.3 GMACs of each paper
    # total; with it, 28-51 GMACs above.
    for row, cost in table10:
        assert 0 < row.gmacs - (cost.total - cost.rpn_conv) / 1e9 < 2.3
        assert cost.total / 1e9 - row.gmacs > 25


def test_cli_prints_table_10(capsys):
    assert main(["--tables", "10"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Table 10: Faster R-CNN + FPN, 300 proposals")
    assert "ResNet-101                 VOC07  600x1024    96.46  34.84  30.20" in out
    assert "backbone 2.01x, detector 1.41x, without the RPN's 3x3 convolution 1.55x; " \
           "paper 1.54x" in out
