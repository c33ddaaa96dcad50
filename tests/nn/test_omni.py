"""OmniKernel / FGM (HieraEdgeNet, OKNet) and LKPE / FLKPE (MSVM-UNet) against plain-PyTorch renderings
of the official definitions."""
import pytest
import torch
from torch import nn

import lkconv
from lkconv.nn.conv import DepthwiseConv2d
from lkconv.nn.omni import FGM, FLKPE, LKPE, OmniKernel
from lkconv.testing import rel_error

from .helpers import check_bf16_autocast, check_channels_last, compare_to_reference, randomize


# ---- reference: AyinMostima/PalynoKit ultralytics/nn/extra_modules/block.py (FGM, OmniKernel);
# ---- c-yn/OKNet models/OKNet.py differs only in ker = 63 and a dense fgm.conv
class RefFGM(nn.Module):
    def __init__(self, dim, conv_groups=None):
        super().__init__()
        self.conv = nn.Conv2d(dim, dim * 2, 3, 1, 1, groups=dim if conv_groups is None else conv_groups)
        self.dwconv1 = nn.Conv2d(dim, dim, 1, 1, groups=1)
        self.dwconv2 = nn.Conv2d(dim, dim, 1, 1, groups=1)
        self.alpha = nn.Parameter(torch.zeros(dim, 1, 1))
        self.beta = nn.Parameter(torch.ones(dim, 1, 1))

    def forward(self, x):
        x1 = self.dwconv1(x)
        x2 = self.dwconv2(x)
        x2_fft = torch.fft.fft2(x2, norm="backward")
        out = x1 * x2_fft
        out = torch.fft.ifft2(out, dim=(-2, -1), norm="backward")
        out = torch.abs(out)
        return out * self.alpha + x * self.beta


class RefOmniKernel(nn.Module):
    def __init__(self, dim, ker=31, conv_groups=None):
        super().__init__()
        pad = ker // 2
        self.in_conv = nn.Sequential(nn.Conv2d(dim, dim, kernel_size=1, padding=0, stride=1), nn.GELU())
        self.out_conv = nn.Conv2d(dim, dim, kernel_size=1, padding=0, stride=1)
        self.dw_13 = nn.Conv2d(dim, dim, kernel_size=(1, ker), padding=(0, pad), stride=1, groups=dim)
        self.dw_31 = nn.Conv2d(dim, dim, kernel_size=(ker, 1), padding=(pad, 0), stride=1, groups=dim)
        self.dw_33 = nn.Conv2d(dim, dim, kernel_size=ker, padding=pad, stride=1, groups=dim)
        self.dw_11 = nn.Conv2d(dim, dim, kernel_size=1, padding=0, stride=1, groups=dim)
        self.act = nn.ReLU()
        self.conv = nn.Conv2d(dim, dim, kernel_size=1, padding=0, stride=1, groups=1, bias=True)
        self.pool = nn.AdaptiveAvgPool2d((1, 1))
        self.fac_conv = nn.Conv2d(dim, dim, kernel_size=1, padding=0, stride=1, groups=1, bias=True)
        self.fac_pool = nn.AdaptiveAvgPool2d((1, 1))
        self.fgm = RefFGM(dim, conv_groups)

    def forward(self, x):
        out = self.in_conv(x)
        x_att = self.fac_conv(self.fac_pool(out))
        x_fft = torch.fft.fft2(out, norm="backward")
        x_fft = x_att * x_fft
        x_fca = torch.fft.ifft2(x_fft, dim=(-2, -1), norm="backward")
        x_fca = torch.abs(x_fca)
        x_att = self.conv(self.pool(x_fca))
        x_sca = x_att * x_fca
        x_sca = self.fgm(x_sca)
        out = x + self.dw_13(out) + self.dw_31(out) + self.dw_33(out) + self.dw_11(out) + x_sca
        out = self.act(out)
        return self.out_conv(out)


# ---- reference: gndlwch2w/msvm-unet model/decoder.py (LKPE, FLKPE); the einops pattern
# ---- "b h w (p1 p2 c) -> b (h p1) (w p2) c" is written out as strided slice assignments
def _ref_patch_expand(x, p, c):
    b, h, w, _ = x.shape
    y = x.new_zeros(b, h * p, w * p, c)
    for p1 in range(p):
        for p2 in range(p):
            k = p1 * p + p2
            y[:, p1::p, p2::p, :] = x[..., k * c:(k + 1) * c]
    return y


class RefLKPE(nn.Module):
    def __init__(self, dim, dim_scale=2, norm_layer=nn.LayerNorm):
        super().__init__()
        self.dim = dim
        self.expand = nn.Sequential(
            nn.Conv2d(dim, dim * 2, kernel_size=1, bias=True),
            nn.BatchNorm2d(dim * 2),
            nn.ReLU(inplace=True),
            nn.Conv2d(dim * 2, dim * 2, kernel_size=3, padding=1, groups=dim * 2, bias=True),
        )
        self.norm = norm_layer(dim // dim_scale)

    def forward(self, x):
        x = self.expand(x).permute(0, 2, 3, 1)
        B, H, W, C = x.shape
        x = _ref_patch_expand(x, 2, C // 4)
        x = x.reshape(B, -1, C // 4)
        x = self.norm(x)
        x = x.reshape(B, H * 2, W * 2, C // 4)
        return x.permute(0, 3, 1, 2)


class RefFLKPE(nn.Module):
    def __init__(self, dim, num_classes, dim_scale=4, norm_layer=nn.LayerNorm):
        super().__init__()
        self.dim = dim
        self.dim_scale = dim_scale
        self.expand = nn.Sequential(
            nn.Conv2d(dim, dim * 16, kernel_size=1, bias=True),
            nn.BatchNorm2d(dim * 16),
            nn.ReLU(inplace=True),
            nn.Conv2d(dim * 16, dim * 16, kernel_size=3, padding=1, groups=dim * 16, bias=True),
        )
        self.output_dim = dim
        self.norm = norm_layer(self.output_dim)
        self.out = nn.Conv2d(self.output_dim, num_classes, kernel_size=1)

    def forward(self, x):
        x = self.expand(x).permute(0, 2, 3, 1)
        B, H, W, C = x.shape
        s = self.dim_scale
        x = _ref_patch_expand(x, s, C // (s * s))
        x = x.reshape(B, -1, self.output_dim)
        x = self.norm(x)
        x = x.reshape(B, H * s, W * s, self.output_dim)
        return self.out(x.permute(0, 3, 1, 2))


# ---- helpers ----
def _randomize(module):
    randomize(module, bn_mean_std=0.2, shift_weight_of=(nn.BatchNorm2d, nn.LayerNorm))


def _compare(block, ref, x):
    """FGM.conv is part of the official state_dict but not of its forward: its gradient stays None."""
    compare_to_reference(block, ref, x, unused_params=True)


# ---- OmniKernel ----
@pytest.mark.parametrize("shape", [(2, 4, 10, 13), (1, 3, 7, 5)])
def test_omnikernel_matches_hieraedgenet(shape):
    block, ref = OmniKernel(shape[1]), RefOmniKernel(shape[1])
    _randomize(block)
    _compare(block, ref, torch.randn(shape))
    assert isinstance(block.fgm.conv, DepthwiseConv2d) and block.fgm.conv.weight.shape == (2 * shape[1], 1, 3, 3)


def test_omnikernel_matches_oknet_bottleneck():
    block, ref = OmniKernel(3, kernel_size=63, fgm_conv_groups=1), RefOmniKernel(3, ker=63, conv_groups=1)
    _randomize(block)
    _compare(block, ref, torch.randn(1, 3, 9, 8))
    assert block.fgm.conv.weight.shape == (6, 3, 3, 3)


def test_fgm_matches_official():
    block, ref = FGM(5), RefFGM(5)
    _randomize(block)
    _compare(block, ref, torch.randn(2, 5, 6, 7))


def test_omnikernel_depthwise_convs_are_lkconv():
    block = OmniKernel(4)
    for conv, k in ((block.dw_13, (1, 31)), (block.dw_31, (31, 1)), (block.dw_33, (31, 31)), (block.dw_11, (1, 1))):
        assert isinstance(conv, DepthwiseConv2d) and conv.kernel_size == k


@pytest.mark.parametrize("kernel_size, shape", [(31, (2, 4, 10, 13)), (7, (1, 3, 16, 5))])
def test_omnikernel_reparameterize(kernel_size, shape):
    block = OmniKernel(shape[1], kernel_size=kernel_size).eval()
    _randomize(block)
    x = torch.randn(shape)
    with torch.no_grad():
        y = block(x)
        block.reparameterize()
        y_rep = block(x)
    assert rel_error(y_rep, y) < 1e-5
    assert isinstance(block.reparam_conv, DepthwiseConv2d)
    assert block.reparam_conv.kernel_size == (kernel_size, kernel_size)
    for name in ("dw_13", "dw_31", "dw_33", "dw_11"):
        assert not hasattr(block, name)
    assert not any(k.startswith("dw_") for k in block.state_dict())
    block.reparameterize()  # a second call changes nothing
    with torch.no_grad():
        assert rel_error(block(x), y) < 1e-5


def test_omnikernel_model_walk_reparameterizes():
    model = nn.Sequential(OmniKernel(3, kernel_size=9), nn.GELU(), OmniKernel(3, kernel_size=5)).eval()
    _randomize(model)
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        y = model(x)
        lkconv.reparameterize(model)
        assert model[0].reparam_conv is not None and model[2].reparam_conv is not None
        assert rel_error(model(x), y) < 1e-5


# ---- LKPE / FLKPE ----
@pytest.mark.parametrize("train", [False, True])
def test_lkpe_matches_official(train):
    block, ref = LKPE(6), RefLKPE(6)
    _randomize(block)
    block.train(train)
    ref.train(train)
    x = torch.randn(2, 6, 5, 7)
    _compare(block, ref, x)
    assert block(x).shape == (2, 3, 10, 14)


@pytest.mark.parametrize("train", [False, True])
def test_flkpe_matches_official(train):
    block, ref = FLKPE(2, num_classes=3), RefFLKPE(2, num_classes=3)
    _randomize(block)
    block.train(train)
    ref.train(train)
    x = torch.randn(2, 2, 3, 4)
    _compare(block, ref, x)
    assert block(x).shape == (2, 3, 12, 16)


def test_lkpe_pixel_order():
    """Channel (p1, p2, c) of the expanded map lands at pixel (2h + p1, 2w + p2), channel c (before norm)."""
    block = LKPE(4).eval()
    block.norm = nn.Identity()
    x = torch.randn(1, 4, 3, 5)
    with torch.no_grad():
        e = block.expand(x)
        y = block(x)
    for p1 in range(2):
        for p2 in range(2):
            k = p1 * 2 + p2
            assert torch.equal(y[:, :, p1::2, p2::2], e[:, 2 * k:2 * k + 2])
    assert isinstance(block.expand[3], DepthwiseConv2d)


# ---- layouts and dtypes ----
@pytest.mark.parametrize(
    "make, shape",
    [(lambda: OmniKernel(4, kernel_size=11), (2, 4, 9, 10)), (lambda: LKPE(4), (2, 4, 5, 6)),
     (lambda: FLKPE(2, 3), (2, 2, 3, 3))],
)
def test_channels_last(make, shape):
    block = make().eval()
    _randomize(block)
    x = torch.randn(shape)
    check_channels_last(block, x)


@pytest.mark.parametrize(
    "make, make_ref, shape",
    [
        (lambda: OmniKernel(4, kernel_size=11), lambda: RefOmniKernel(4, ker=11), (2, 4, 9, 10)),
        (lambda: LKPE(16), lambda: RefLKPE(16), (2, 16, 5, 6)),  # LayerNorm over >= 4 channels (see below)
        (lambda: FLKPE(4, 3), lambda: RefFLKPE(4, 3), (2, 4, 3, 3)),
    ],
)
def test_bf16_autocast(make, make_ref, shape):
    """(LayerNorm over 2 channels, as in LKPE(4), has an ill-conditioned backward: bf16 grads are far from fp32
    for the official code as well, so the sizes here keep the fp32 comparison meaningful.)"""
    block = make().eval()
    _randomize(block)
    check_bf16_autocast(block, make_ref().eval(), [torch.randn(shape)])


# ---- bad configuration ----
@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: OmniKernel(0), "dim"),
        (lambda: OmniKernel(4, kernel_size=30), "kernel_size"),
        (lambda: OmniKernel(4, fgm_conv_groups=3), "conv_groups"),
        (lambda: FGM(4, conv_groups=0), "conv_groups"),
        (lambda: LKPE(5), "dim must be even"),
        (lambda: LKPE(8, dim_scale=4), "dim_scale"),
        (lambda: FLKPE(4, 3, dim_scale=2), "dim_scale"),
        (lambda: FLKPE(4, 0), "num_classes"),
    ],
)
def test_bad_configuration(make, match):
    with pytest.raises(ValueError, match=match):
        make()
