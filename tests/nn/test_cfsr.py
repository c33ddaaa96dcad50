"""CFSR blocks against a plain-PyTorch rendering of the official definitions (Aitical/CFSR cfsr_arch.py)."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import lkconv
from lkconv.nn.cfsr import CFSRBlock, CFSRConvMod, CFSREdgeFFN, CFSRReparamLargeKernelConv
from lkconv.testing import rel_error

from .helpers import (
    assert_depthwise_on_lkconv, check_bf16_autocast_output, check_channels_last, compare_to_reference, trainable,
)


# ----------------------------------------------------------------------------------------------------------
# Reference: the official training-time modules (commit a13d41c), written with torch.nn only. The masks are
# built entry by entry as in the official code; the official MLP reads ``self.merge_kernel`` without setting
# it in __init__ (its model sets it by merging), so the reference sets it to False for the unmerged form.
# ----------------------------------------------------------------------------------------------------------
def _official_edge_params(module, c):
    module.scale_sobel_x = nn.Parameter(torch.randn(c, 1, 1, 1) * 1e-3)
    module.sobel_x_bias = nn.Parameter(torch.randn(c) * 1e-3)
    m = torch.zeros((c, 1, 3, 3))
    for i in range(c):
        m[i, 0, 0, 1] = 1.0
        m[i, 0, 1, 0] = 2.0
        m[i, 0, 2, 0] = 1.0
        m[i, 0, 0, 2] = -1.0
        m[i, 0, 1, 2] = -2.0
        m[i, 0, 2, 2] = -1.0
    module.mask_sobel_x = nn.Parameter(m, requires_grad=False)
    module.scale_sobel_y = nn.Parameter(torch.randn(c, 1, 1, 1) * 1e-3)
    module.sobel_y_bias = nn.Parameter(torch.randn(c) * 1e-3)
    m = torch.zeros((c, 1, 3, 3))
    for i in range(c):
        m[i, 0, 0, 0] = 1.0
        m[i, 0, 0, 1] = 2.0
        m[i, 0, 0, 2] = 1.0
        m[i, 0, 2, 0] = -1.0
        m[i, 0, 2, 1] = -2.0
        m[i, 0, 2, 2] = -1.0
    module.mask_sobel_y = nn.Parameter(m, requires_grad=False)
    module.scale_laplacian = nn.Parameter(torch.randn(c, 1, 1, 1) * 1e-3)
    module.laplacian_bias = nn.Parameter(torch.randn(c) * 1e-3)
    m = torch.zeros((c, 1, 3, 3))
    for i in range(c):
        m[i, 0, 0, 0] = 1.0
        m[i, 0, 1, 0] = 1.0
        m[i, 0, 1, 2] = 1.0
        m[i, 0, 2, 1] = 1.0
        m[i, 0, 1, 1] = -4.0
    module.mask_laplacian = nn.Parameter(m, requires_grad=False)


def _official_edge_terms(module, x, c):
    return (F.conv2d(x, module.scale_sobel_x * module.mask_sobel_x, module.sobel_x_bias, 1, 1, groups=c)
            + F.conv2d(x, module.scale_sobel_y * module.mask_sobel_y, module.sobel_y_bias, 1, 1, groups=c)
            + F.conv2d(x, module.scale_laplacian * module.mask_laplacian, module.laplacian_bias, 1, 1, groups=c))


class RefReparamLargeKernelConv(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride, groups, small_kernel=None):
        super().__init__()
        self.out_channels = out_channels
        self.lkb_origin = nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, 1, groups,
                                    bias=True)
        if small_kernel is not None:
            self.small_conv = nn.Conv2d(in_channels, out_channels, small_kernel, stride, small_kernel // 2, 1,
                                        groups, bias=True)
            _official_edge_params(self, in_channels)

    def forward(self, inputs):
        out = self.lkb_origin(inputs)
        if hasattr(self, "small_conv"):
            out = out + self.small_conv(inputs) + _official_edge_terms(self, inputs, self.out_channels)
        return out


class RefLayerNorm(nn.Module):
    def __init__(self, d, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.bias = nn.Parameter(torch.zeros(d))
        self.eps = eps

    def forward(self, x):
        u = x.mean(1, keepdim=True)
        s = (x - u).pow(2).mean(1, keepdim=True)
        x = (x - u) / torch.sqrt(s + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class RefConvMod(nn.Module):
    def __init__(self, dim, dw_size, small_kernel=None):
        super().__init__()
        self.norm = RefLayerNorm(dim)
        self.a = nn.Sequential(nn.Conv2d(dim, dim, 1), nn.GELU(),
                               RefReparamLargeKernelConv(dim, dim, dw_size, 1, dim, small_kernel))
        self.v = nn.Conv2d(dim, dim, 1)
        self.proj = nn.Conv2d(dim, dim, 1)

    def forward(self, x):
        x = self.norm(x)
        return self.proj(self.a(x) * self.v(x))


class RefMLP(nn.Module):
    def __init__(self, dim, mlp_ratio=4):
        super().__init__()
        self.out_channels = dim * mlp_ratio
        self.norm = RefLayerNorm(dim)
        self.fc1 = nn.Conv2d(dim, dim * mlp_ratio, 1)
        self.pos = nn.Conv2d(dim * mlp_ratio, dim * mlp_ratio, 3, padding=1, groups=dim * mlp_ratio)
        self.fc2 = nn.Conv2d(dim * mlp_ratio, dim, 1)
        self.act = nn.GELU()
        _official_edge_params(self, dim * mlp_ratio)
        self.merge_kernel = False

    def forward(self, x):
        x = self.act(self.fc1(self.norm(x)))
        out = self.pos(x)
        if not self.merge_kernel:
            out = out + _official_edge_terms(self, x, self.out_channels)
        return self.fc2(x + self.act(out))


class RefBlock(nn.Module):
    def __init__(self, dim, dw_size, small_kernel=None, mlp_ratio=4):
        super().__init__()
        self.attn = RefConvMod(dim, dw_size, small_kernel)
        self.mlp = RefMLP(dim, mlp_ratio)
        self.layer_scale_1 = nn.Parameter(1e-6 * torch.ones(dim))
        self.layer_scale_2 = nn.Parameter(1e-6 * torch.ones(dim))

    def forward(self, x):
        x = x + self.layer_scale_1.unsqueeze(-1).unsqueeze(-1) * self.attn(x)
        return x + self.layer_scale_2.unsqueeze(-1).unsqueeze(-1) * self.mlp(x)


class RefReleasedBlock(nn.Module):
    """The released (inference) Block of the current official file: LargeKernelConv.lkb_reparam, merged MLP."""

    def __init__(self, dim, dw_size, mlp_ratio):
        super().__init__()
        hidden = dim * mlp_ratio
        self.attn = nn.Module()
        self.attn.norm = RefLayerNorm(dim)
        lk = nn.Module()
        lk.lkb_reparam = nn.Conv2d(dim, dim, dw_size, 1, dw_size // 2, groups=dim, bias=True)
        self.attn.a = nn.Sequential(nn.Conv2d(dim, dim, 1), nn.GELU(), lk)
        self.attn.v = nn.Conv2d(dim, dim, 1)
        self.attn.proj = nn.Conv2d(dim, dim, 1)
        self.mlp = nn.Module()
        self.mlp.norm = RefLayerNorm(dim)
        self.mlp.fc1 = nn.Conv2d(dim, hidden, 1)
        self.mlp.pos = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden)
        self.mlp.fc2 = nn.Conv2d(hidden, dim, 1)
        self.layer_scale_1 = nn.Parameter(torch.ones(dim))
        self.layer_scale_2 = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        at = self.attn
        h = at.norm(x)
        a = at.a[2].lkb_reparam(F.gelu(at.a[0](h)))
        x = x + self.layer_scale_1[:, None, None] * at.proj(a * at.v(h))
        m = self.mlp
        h = F.gelu(m.fc1(m.norm(x)))
        return x + self.layer_scale_2[:, None, None] * m.fc2(h + F.gelu(m.pos(h)))


# ----------------------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------------------
def _randomize(module):
    """Non-trivial edge scales/biases, norms and layer scales (the official init makes them ~1e-3 / 1e-6)."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.split(".")[-1].startswith(("scale_", "sobel_", "laplacian_", "layer_scale")) or "norm." in name:
                p.normal_(0, 0.5)
    return module


def _compare(block, ref, x):
    """The official masks are frozen Parameters there and buffers here: compare the trainable parameters."""
    _randomize(block)
    compare_to_reference(block, ref, x, params=trainable, same_param_names=True, check_buffers=False)


# ----------------------------------------------------------------------------------------------------------
# (1) Same function, names and gradients as the official definition
# ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("args, shape", [((5, 5, 9, 1, 5, 3), (2, 5, 10, 9)), ((4, 4, 7, 1, 4, 5), (1, 4, 7, 8)),
                                         ((3, 3, 5, 1, 3, 1), (2, 3, 6, 6)), ((4, 8, 5, 2, 4), (2, 4, 9, 8))])
def test_reparam_large_kernel_conv_matches_official(args, shape):
    block = CFSRReparamLargeKernelConv(*args)
    assert_depthwise_on_lkconv(block)
    _compare(block, RefReparamLargeKernelConv(*args), torch.randn(shape))


@pytest.mark.parametrize("args, shape", [((6, 9, 3), (2, 6, 10, 11)), ((4, 7), (2, 4, 8, 8))])
def test_convmod_matches_official(args, shape):
    block = CFSRConvMod(*args)
    assert_depthwise_on_lkconv(block)
    _compare(block, RefConvMod(*args), torch.randn(shape))


@pytest.mark.parametrize("dim, ratio", [(4, 2), (3, 4)])
def test_edge_ffn_matches_official(dim, ratio):
    block = CFSREdgeFFN(dim, ratio)
    assert_depthwise_on_lkconv(block)
    _compare(block, RefMLP(dim, ratio), torch.randn(2, dim, 9, 7))


def test_block_matches_official():
    block = CFSRBlock(6, 9, 3, False, 2)
    assert_depthwise_on_lkconv(block)
    _compare(block, RefBlock(6, 9, 3, 2), torch.randn(2, 6, 11, 10))


def test_official_masks():
    ffn = CFSREdgeFFN(2, 1)
    sx = torch.tensor([[0.0, 1, -1], [2, 0, -2], [1, 0, -1]])
    sy = torch.tensor([[1.0, 2, 1], [0, 0, 0], [-1, -2, -1]])
    lap = torch.tensor([[1.0, 0, 0], [1, -4, 1], [0, 1, 0]])
    for mask, expect in ((ffn.mask_sobel_x, sx), (ffn.mask_sobel_y, sy), (ffn.mask_laplacian, lap)):
        assert mask.shape == (2, 1, 3, 3)
        assert torch.equal(mask[0, 0], expect) and torch.equal(mask[1, 0], expect)
    assert not any(n.startswith("mask") for n, _ in ffn.named_parameters())


# ----------------------------------------------------------------------------------------------------------
# (2) Reparameterization
# ----------------------------------------------------------------------------------------------------------
_LKB_KEYS = {"lkb_reparam.weight", "lkb_reparam.bias"}


@pytest.mark.parametrize(
    "make, shape, keys",
    [
        (lambda: CFSRReparamLargeKernelConv(5, 5, 9, 1, 5, 3), (2, 5, 10, 9), _LKB_KEYS),
        (lambda: CFSRReparamLargeKernelConv(4, 4, 3, 1, 4, 3), (2, 4, 7, 6), _LKB_KEYS),
        (lambda: CFSRReparamLargeKernelConv(4, 4, 7, 1, 4), (2, 4, 7, 6), _LKB_KEYS),
        (lambda: CFSREdgeFFN(4, 2), (2, 4, 8, 9),
         {"norm.weight", "norm.bias", "fc1.weight", "fc1.bias", "pos.weight", "pos.bias", "fc2.weight", "fc2.bias"}),
        (lambda: CFSRConvMod(5, 7, 5), (2, 5, 8, 8), None),
    ],
)
def test_reparameterize(make, shape, keys):
    block = _randomize(make()).eval()
    with torch.no_grad():
        for p in block.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    x = torch.randn(shape)
    with torch.no_grad():
        y = block(x)
        block.reparameterize()
        y_fused = block(x)
    if keys is not None:
        assert set(block.state_dict()) == keys
    assert not any("sobel" in k or "laplacian" in k or "lkb_origin" in k or "small_conv" in k
                   for k in block.state_dict())
    assert_depthwise_on_lkconv(block)
    assert rel_error(y_fused, y) < 1e-5, rel_error(y_fused, y)
    block.reparameterize()  # idempotent
    with torch.no_grad():
        assert rel_error(block(x), y) < 1e-5


def test_reparameterized_block_is_the_released_architecture():
    """After reparameterize(), the state_dict loads into the released Block and computes the same."""
    block = _randomize(CFSRBlock(6, 9, 3, False, 2)).eval()
    with torch.no_grad():
        for p in block.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    model = nn.Sequential(block)
    x = torch.randn(2, 6, 10, 9)
    with torch.no_grad():
        y = model(x)
        lkconv.reparameterize(model)
        y_fused = model(x)
    released = RefReleasedBlock(6, 9, 2)
    released.load_state_dict(block.state_dict(), strict=True)
    with torch.no_grad():
        y_released = released(x)
    assert rel_error(y_fused, y) < 1e-5
    assert rel_error(y_released, y) < 1e-5


def test_merged_construction_has_released_checkpoint_keys():
    """Keys and shapes of one block of the released CFSR_x2.pth (embed_dim 48, dw_size 9, mlp_ratio 2)."""
    expect = {
        "layer_scale_1": (48,), "layer_scale_2": (48,),
        "attn.norm.weight": (48,), "attn.norm.bias": (48,),
        "attn.a.0.weight": (48, 48, 1, 1), "attn.a.0.bias": (48,),
        "attn.a.2.lkb_reparam.weight": (48, 1, 9, 9), "attn.a.2.lkb_reparam.bias": (48,),
        "attn.v.weight": (48, 48, 1, 1), "attn.v.bias": (48,),
        "attn.proj.weight": (48, 48, 1, 1), "attn.proj.bias": (48,),
        "mlp.norm.weight": (48,), "mlp.norm.bias": (48,),
        "mlp.fc1.weight": (96, 48, 1, 1), "mlp.fc1.bias": (96,),
        "mlp.pos.weight": (96, 1, 3, 3), "mlp.pos.bias": (96,),
        "mlp.fc2.weight": (48, 96, 1, 1), "mlp.fc2.bias": (48,),
    }
    sd = CFSRBlock(48, 9, 3, True, 2).state_dict()
    assert {k: tuple(v.shape) for k, v in sd.items()} == expect
    trained = CFSRBlock(48, 9, 3, False, 2)
    trained.reparameterize()
    assert {k: tuple(v.shape) for k, v in trained.state_dict().items()} == expect


# ----------------------------------------------------------------------------------------------------------
# (3) channels_last, (4) bf16 autocast
# ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fused", [False, True])
def test_channels_last(fused):
    block = _randomize(CFSRBlock(6, 9, 3, False, 2))
    if fused:
        block.reparameterize()
    x = torch.randn(2, 6, 10, 9)
    check_channels_last(block, x)


@pytest.mark.parametrize("fused", [False, True])
def test_bf16_autocast(fused):
    block = _randomize(CFSRBlock(6, 9, 3, False, 2))
    if fused:
        block.reparameterize()
    x = torch.randn(2, 6, 10, 9)
    check_bf16_autocast_output(block, x, tol=2e-2)
    x = x.requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y_bf = block(x)
    y_bf.float().square().sum().backward()
    assert torch.isfinite(x.grad).all()


# ----------------------------------------------------------------------------------------------------------
# (5) Bad configuration
# ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: CFSRReparamLargeKernelConv(4, 8, 7, 1, 4, 3), "out_channels"),
        (lambda: CFSRReparamLargeKernelConv(4, 4, 7, 2, 4, 3), "stride"),
        (lambda: CFSRReparamLargeKernelConv(4, 4, 8, 1, 4, 3), "kernel_size"),
        (lambda: CFSRReparamLargeKernelConv(4, 4, 7, 1, 4, 9), "small_kernel"),
        (lambda: CFSRReparamLargeKernelConv(4, 4, 7, 1, 4, 4), "small_kernel"),
        (lambda: CFSRReparamLargeKernelConv(4, 6, 7, 1, 4), "groups"),
        (lambda: CFSRConvMod(4, 8), "dw_size"),
        (lambda: CFSRConvMod(0, 7), "dim"),
        (lambda: CFSREdgeFFN(4, 1.5), "mlp_ratio"),
        (lambda: CFSREdgeFFN(4, 0), "mlp_ratio"),
    ],
)
def test_bad_configuration(make, match):
    with pytest.raises(ValueError, match=match):
        make()
