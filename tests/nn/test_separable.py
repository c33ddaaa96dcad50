"""SeparableLargeKernelConv: rank-R separable depthwise conv, dense folding and SVD construction."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import lkconv
from lkconv.nn.conv import DepthwiseConv2d
from lkconv.nn.separable import SeparableLargeKernelConv
from lkconv.testing import rel_error

from .helpers import check_bf16_autocast_vs_fp32, check_channels_last

CONFIGS = [
    # channels, kernel_size, rank, stride, dilation, padding_mode, input shape
    (3, 7, 1, 1, 1, "zeros", (2, 3, 11, 9)),
    (4, (5, 9), 3, 1, 1, "zeros", (1, 4, 8, 13)),
    (2, 7, 2, 2, 1, "zeros", (2, 2, 12, 15)),
    (3, 5, 2, 1, 2, "zeros", (1, 3, 10, 11)),
    (2, 7, 2, 1, 1, "circular", (2, 2, 9, 10)),
    (2, (3, 5), 3, (2, 1), 1, "reflect", (1, 2, 8, 9)),
    (3, 5, 2, 1, 1, "replicate", (1, 3, 7, 6)),
]


def _pad(k, d):
    return d * (k - 1) // 2


def _dense_reference(x, u, v, bias, kernel, stride, dilation, padding_mode):
    """The definition: one depthwise conv with K_c = sum_r u_{c,r} v_{c,r}^T, via F.pad + F.conv2d."""
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    d = (dilation, dilation) if isinstance(dilation, int) else dilation
    k = (u[:, :, :, None] * v[:, :, None, :]).sum(1)[:, None]  # (C, 1, kh, kw)
    ph, pw = _pad(kh, d[0]), _pad(kw, d[1])
    if padding_mode == "zeros":
        xp = F.pad(x, (pw, pw, ph, ph))
    else:
        xp = F.pad(x, (pw, pw, ph, ph), mode=padding_mode)
    return F.conv2d(xp, k, bias, stride=stride, dilation=d, groups=x.shape[1])


class RefPerRankPair(nn.Module):
    """Sum over ranks of a (1 x kw then kh x 1) nn.Conv2d depthwise pair, channel by channel weights from u, v."""

    def __init__(self, u, v, bias, kernel, stride, dilation, padding_mode):
        super().__init__()
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
        s = (stride, stride) if isinstance(stride, int) else stride
        d = (dilation, dilation) if isinstance(dilation, int) else dilation
        c, r = u.shape[:2]
        self.pairs = nn.ModuleList()
        for i in range(r):
            cw = nn.Conv2d(c, c, (1, kw), (1, s[1]), (0, _pad(kw, d[1])), (1, d[1]), groups=c, bias=False,
                           padding_mode=padding_mode)
            ch = nn.Conv2d(c, c, (kh, 1), (s[0], 1), (_pad(kh, d[0]), 0), (d[0], 1), groups=c, bias=False,
                           padding_mode=padding_mode)
            with torch.no_grad():
                cw.weight.copy_(v[:, i].reshape(c, 1, 1, kw))
                ch.weight.copy_(u[:, i].reshape(c, 1, kh, 1))
            self.pairs.append(nn.Sequential(cw, ch))
        self.bias = None if bias is None else nn.Parameter(bias.detach().clone())

    def forward(self, x):
        y = sum(pair(x) for pair in self.pairs)
        return y if self.bias is None else y + self.bias[:, None, None]


def _make(cfg, **kw):
    c, k, r, s, d, mode, _ = cfg
    block = SeparableLargeKernelConv(c, k, rank=r, stride=s, dilation=d, padding_mode=mode, **kw)
    with torch.no_grad():
        for p in block.parameters():
            p.copy_(torch.randn_like(p))
    return block


@pytest.mark.parametrize("cfg", CONFIGS)
def test_matches_dense_definition_with_grads(cfg):
    c, k, r, s, d, mode, shape = cfg
    block = _make(cfg)
    u = block.u.detach().clone().requires_grad_(True)
    v = block.v.detach().clone().requires_grad_(True)
    b = block.bias.detach().clone().requires_grad_(True)
    x = torch.randn(shape)
    x1, x2 = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    y1 = block(x1)
    y2 = _dense_reference(x2, u, v, b, k, s, d, mode)
    assert y1.shape == y2.shape
    assert rel_error(y1, y2) < 1e-5
    g = torch.randn_like(y2)
    y1.backward(g)
    y2.backward(g)
    assert rel_error(x1.grad, x2.grad) < 1e-5
    assert rel_error(block.conv_h.weight.grad.reshape(u.shape), u.grad) < 1e-5
    assert rel_error(block.conv_w.weight.grad.reshape(v.shape), v.grad) < 1e-5
    assert rel_error(block.bias.grad, b.grad) < 1e-5


@pytest.mark.parametrize("cfg", CONFIGS[:3] + CONFIGS[4:5])
def test_matches_per_rank_conv_pairs(cfg):
    c, k, r, s, d, mode, shape = cfg
    block = _make(cfg)
    ref = RefPerRankPair(block.u.detach(), block.v.detach(), block.bias, k, s, d, mode)
    x = torch.randn(shape)
    with torch.no_grad():
        assert rel_error(block(x), ref(x)) < 1e-5


@pytest.mark.parametrize("cfg", CONFIGS)
def test_to_dense_and_reparameterize(cfg):
    c, k, r, s, d, mode, shape = cfg
    block = _make(cfg).eval()
    x = torch.randn(shape)
    kernel = torch.einsum("cri,crj->cij", block.u, block.v).detach()
    dense = block.to_dense()
    assert isinstance(dense, DepthwiseConv2d)
    assert dense.padding_mode == mode and dense.stride == block.stride and dense.dilation == block.dilation
    assert torch.equal(dense.weight[:, 0], kernel)
    assert torch.equal(dense.bias, block.bias.detach())
    with torch.no_grad():
        y = block(x)
        assert rel_error(dense(x), y) < 1e-5
        block.reparameterize()
        assert rel_error(block(x), y) < 1e-5
    assert set(block.state_dict()) == {"reparam_conv.weight", "reparam_conv.bias"}
    assert not hasattr(block, "conv_w") and not hasattr(block, "conv_h")
    block.reparameterize()
    with torch.no_grad():
        assert rel_error(block(x), y) < 1e-5
        assert rel_error(block.to_dense()(x), y) < 1e-5


def test_model_walk_reparameterizes():
    model = nn.Sequential(SeparableLargeKernelConv(3, 9, rank=2), nn.ReLU(), SeparableLargeKernelConv(3, 5)).eval()
    x = torch.randn(2, 3, 10, 10)
    with torch.no_grad():
        y = model(x)
        lkconv.reparameterize(model)
        assert model[0].reparam_conv is not None and model[2].reparam_conv is not None
        assert rel_error(model(x), y) < 1e-5


@pytest.mark.parametrize(
    "kernel, dilation, stride, mode", [(7, 1, 1, "zeros"), ((5, 9), 1, 2, "circular"), (5, 2, 1, "reflect")]
)
def test_from_dense_full_rank_is_exact(kernel, dilation, stride, mode):
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    conv = nn.Conv2d(4, 4, (kh, kw), stride, (_pad(kh, dilation), _pad(kw, dilation)), dilation, groups=4,
                     padding_mode=mode)
    sep = SeparableLargeKernelConv.from_dense(conv, rank=min(kh, kw))
    assert rel_error(sep.dense_kernel(), conv.weight) < 1e-5
    x = torch.randn(2, 4, 12, 13)
    with torch.no_grad():
        assert rel_error(sep(x), conv(x)) < 1e-5


def test_from_dense_truncation_is_the_best_low_rank_approximation():
    conv = DepthwiseConv2d(5, 5, 9, padding=4)
    w = conv.weight.detach().double()[:, 0]
    s = torch.linalg.svdvals(w)  # (5, 9), descending
    errors = []
    for rank in range(1, 10):
        sep = SeparableLargeKernelConv.from_dense(conv, rank)
        err2 = (sep.dense_kernel().detach().double()[:, 0] - w).pow(2).sum(dim=(1, 2))
        expected = s[:, rank:].pow(2).sum(dim=1)  # Eckart-Young: the discarded singular values
        assert torch.allclose(err2, expected, rtol=1e-4, atol=1e-9), (rank, err2, expected)
        errors.append(err2.sum().item())
    assert all(a > b for a, b in zip(errors, errors[1:-1]))
    assert errors[-1] < 1e-9
    assert torch.equal(sep.bias, conv.bias)


def test_from_dense_rank_one_kernel_is_exact_at_rank_one():
    u, v = torch.randn(3, 11), torch.randn(3, 11)
    conv = nn.Conv2d(3, 3, 11, padding=5, groups=3, bias=False)
    with torch.no_grad():
        conv.weight.copy_((u[:, :, None] * v[:, None, :])[:, None])
    sep = SeparableLargeKernelConv.from_dense(conv, rank=1)
    assert sep.bias is None
    x = torch.randn(1, 3, 14, 12)
    with torch.no_grad():
        assert rel_error(sep(x), conv(x)) < 1e-5


def test_from_dense_accepts_same_padding():
    conv = nn.Conv2d(2, 2, 7, padding="same", groups=2)
    sep = SeparableLargeKernelConv.from_dense(conv, rank=7)
    x = torch.randn(1, 2, 9, 9)
    with torch.no_grad():
        assert rel_error(sep(x), conv(x)) < 1e-5


def test_training_step_updates_factors():
    block = SeparableLargeKernelConv(3, 7, rank=2)
    opt = torch.optim.SGD(block.parameters(), lr=0.1)
    before = block.dense_kernel().detach().clone()
    block(torch.randn(2, 3, 8, 8)).square().mean().backward()
    opt.step()
    assert not torch.allclose(block.dense_kernel(), before)


def test_channels_last():
    block = _make(CONFIGS[1])
    x = torch.randn(2, 4, 9, 12)
    check_channels_last(block, x)


def test_bf16_autocast():
    block = _make(CONFIGS[1])
    check_bf16_autocast_vs_fp32(block, torch.randn(2, 4, 9, 12), tol=3e-2)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: SeparableLargeKernelConv(0, 7), "channels"),
        (lambda: SeparableLargeKernelConv(4, 0), "kernel_size"),
        (lambda: SeparableLargeKernelConv(4, (7, 7, 7)), "kernel_size"),
        (lambda: SeparableLargeKernelConv(4, 7, rank=0), "rank"),
        (lambda: SeparableLargeKernelConv(4, (3, 7), rank=4), "rank"),
        (lambda: SeparableLargeKernelConv(4, 7, stride=0), "stride"),
        (lambda: SeparableLargeKernelConv(4, 7, dilation=(1, 0)), "dilation"),
        (lambda: SeparableLargeKernelConv.from_dense(nn.Conv2d(4, 4, 7, padding=3), 1), "depthwise"),
        (lambda: SeparableLargeKernelConv.from_dense(nn.Conv2d(4, 8, 7, padding=3, groups=4), 1), "multiplier"),
        (lambda: SeparableLargeKernelConv.from_dense(nn.Conv2d(4, 4, 7, padding=2, groups=4), 1), "padding"),
        (lambda: SeparableLargeKernelConv.from_dense(nn.Conv2d(4, 4, 5, padding=2, groups=4), 6), "rank"),
    ],
)
def test_bad_configuration(make, match):
    with pytest.raises(ValueError, match=match):
        make()
