"""InceptionDWConv2d against a plain-PyTorch rendering of the official InceptionNeXt definition."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lkconv.nn.conv import DepthwiseConv2d
from lkconv.nn.inception import InceptionDWConv2d
from lkconv.testing import rel_error

from .helpers import check_bf16_autocast_vs_fp32, check_channels_last, compare_to_reference


class RefInceptionDWConv2d(nn.Module):
    """sail-sg/inceptionnext models/inceptionnext.py InceptionDWConv2d, written with nn.Conv2d."""

    def __init__(self, in_channels, square_kernel_size=3, band_kernel_size=11, branch_ratio=0.125):
        super().__init__()
        gc = int(in_channels * branch_ratio)
        self.dwconv_hw = nn.Conv2d(gc, gc, square_kernel_size, padding=square_kernel_size // 2, groups=gc)
        self.dwconv_w = nn.Conv2d(gc, gc, (1, band_kernel_size), padding=(0, band_kernel_size // 2), groups=gc)
        self.dwconv_h = nn.Conv2d(gc, gc, (band_kernel_size, 1), padding=(band_kernel_size // 2, 0), groups=gc)
        self.split_indexes = (in_channels - 3 * gc, gc, gc, gc)

    def forward(self, x):
        x_id, x_hw, x_w, x_h = torch.split(x, self.split_indexes, dim=1)
        return torch.cat((x_id, self.dwconv_hw(x_hw), self.dwconv_w(x_w), self.dwconv_h(x_h)), dim=1)


@pytest.mark.parametrize(
    "cfg, shape",
    [
        (dict(in_channels=16), (2, 16, 13, 9)),
        (dict(in_channels=12, square_kernel_size=5, band_kernel_size=7, branch_ratio=0.25), (1, 12, 6, 11)),
        (dict(in_channels=9, branch_ratio=1 / 3), (2, 9, 8, 8)),  # empty identity group
    ],
)
def test_matches_official(cfg, shape):
    block = InceptionDWConv2d(**cfg)
    ref = RefInceptionDWConv2d(**cfg)
    x = torch.randn(shape)
    compare_to_reference(block, ref, x)


def test_uses_lkconv_depthwise_and_official_split():
    block = InceptionDWConv2d(64)
    assert block.split_indexes == (40, 8, 8, 8)
    for name in ("dwconv_hw", "dwconv_w", "dwconv_h"):
        assert isinstance(getattr(block, name), DepthwiseConv2d)
    assert block.dwconv_w.kernel_size == (1, 11) and block.dwconv_h.kernel_size == (11, 1)
    assert block.dwconv_hw.kernel_size == (3, 3)


def test_branch_order_in_output():
    """Each output group is computed from its own input group: identity first, then hw, w, h."""
    block = InceptionDWConv2d(8, branch_ratio=0.25).eval()
    x = torch.randn(1, 8, 7, 7)
    y = block(x).detach()
    assert torch.equal(y[:, :2], x[:, :2])
    hw = F.conv2d(x[:, 2:4], block.dwconv_hw.weight, block.dwconv_hw.bias, padding=1, groups=2)
    w = F.conv2d(x[:, 4:6], block.dwconv_w.weight, block.dwconv_w.bias, padding=(0, 5), groups=2)
    h = F.conv2d(x[:, 6:8], block.dwconv_h.weight, block.dwconv_h.bias, padding=(5, 0), groups=2)
    assert rel_error(y[:, 2:4], hw) < 1e-6
    assert rel_error(y[:, 4:6], w) < 1e-6
    assert rel_error(y[:, 6:8], h) < 1e-6


def test_channels_last():
    block = InceptionDWConv2d(16)
    x = torch.randn(2, 16, 10, 12)
    check_channels_last(block, x, tol=1e-6)


def test_bf16_autocast():
    block = InceptionDWConv2d(16)
    check_bf16_autocast_vs_fp32(block, torch.randn(2, 16, 10, 12), tol=2e-2)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(in_channels=4), "branch_ratio"),
        (dict(in_channels=16, branch_ratio=0.5), "identity group"),
        (dict(in_channels=16, square_kernel_size=4), "square_kernel_size"),
        (dict(in_channels=16, band_kernel_size=10), "band_kernel_size"),
        (dict(in_channels=16, band_kernel_size=0), "band_kernel_size"),
    ],
)
def test_bad_configuration(kwargs, match):
    with pytest.raises(ValueError, match=match):
        InceptionDWConv2d(**kwargs)
