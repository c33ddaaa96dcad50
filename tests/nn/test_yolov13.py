"""YOLOv13 DS blocks against a plain-PyTorch rendering of the official definitions
(iMoonLab/yolov13 ultralytics/nn/modules/block.py and conv.py)."""
import pytest
import torch
from torch import nn

import lkconv
from lkconv.nn.conv import DepthwiseConv2d
from lkconv.nn.yolov13 import C2f, C3, Conv, DSBottleneck, DSC3k, DSC3k2, DSConv
from lkconv.testing import rel_error

from .helpers import (
    assert_depthwise_on_lkconv, check_bf16_autocast_backward, check_bf16_autocast_output, check_channels_last,
    compare_to_reference, randomize_bn,
)


# ----------------------------------------------------------------------------------------------------------
# Reference: the official modules, written with torch.nn only.
# ----------------------------------------------------------------------------------------------------------
def ref_autopad(k, p=None, d=1):
    if d > 1:
        k = d * (k - 1) + 1 if isinstance(k, int) else [d * (x - 1) + 1 for x in k]
    if p is None:
        p = k // 2 if isinstance(k, int) else [x // 2 for x in k]
    return p


class RefConv(nn.Module):
    def __init__(self, c1, c2, k=1, s=1, p=None, g=1, d=1, act=True):
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, ref_autopad(k, p, d), groups=g, dilation=d, bias=False)
        self.bn = nn.BatchNorm2d(c2)
        self.act = nn.SiLU() if act is True else act if isinstance(act, nn.Module) else nn.Identity()

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class RefDSConv(nn.Module):
    def __init__(self, c_in, c_out, k=3, s=1, p=None, d=1, bias=False):
        super().__init__()
        if p is None:
            p = (d * (k - 1)) // 2
        self.dw = nn.Conv2d(c_in, c_in, kernel_size=k, stride=s, padding=p, dilation=d, groups=c_in, bias=bias)
        self.pw = nn.Conv2d(c_in, c_out, 1, 1, 0, bias=bias)
        self.bn = nn.BatchNorm2d(c_out)
        self.act = nn.SiLU()

    def forward(self, x):
        return self.act(self.bn(self.pw(self.dw(x))))


class RefBottleneck(nn.Module):
    def __init__(self, c1, c2, shortcut=True, g=1, k=(3, 3), e=0.5):
        super().__init__()
        c_ = int(c2 * e)
        self.cv1 = RefConv(c1, c_, k[0], 1)
        self.cv2 = RefConv(c_, c2, k[1], 1, g=g)
        self.add = shortcut and c1 == c2

    def forward(self, x):
        return x + self.cv2(self.cv1(x)) if self.add else self.cv2(self.cv1(x))


class RefC2f(nn.Module):
    def __init__(self, c1, c2, n=1, shortcut=False, g=1, e=0.5):
        super().__init__()
        self.c = int(c2 * e)
        self.cv1 = RefConv(c1, 2 * self.c, 1, 1)
        self.cv2 = RefConv((2 + n) * self.c, c2, 1)
        self.m = nn.ModuleList(RefBottleneck(self.c, self.c, shortcut, g, k=((3, 3), (3, 3)), e=1.0) for _ in range(n))

    def forward(self, x):
        y = list(self.cv1(x).chunk(2, 1))
        y.extend(m(y[-1]) for m in self.m)
        return self.cv2(torch.cat(y, 1))


class RefC3(nn.Module):
    def __init__(self, c1, c2, n=1, shortcut=True, g=1, e=0.5):
        super().__init__()
        c_ = int(c2 * e)
        self.cv1 = RefConv(c1, c_, 1, 1)
        self.cv2 = RefConv(c1, c_, 1, 1)
        self.cv3 = RefConv(2 * c_, c2, 1)
        self.m = nn.Sequential(*(RefBottleneck(c_, c_, shortcut, g, k=((1, 1), (3, 3)), e=1.0) for _ in range(n)))

    def forward(self, x):
        return self.cv3(torch.cat((self.m(self.cv1(x)), self.cv2(x)), 1))


class RefDSBottleneck(nn.Module):
    def __init__(self, c1, c2, shortcut=True, e=0.5, k1=3, k2=5, d2=1):
        super().__init__()
        c_ = int(c2 * e)
        self.cv1 = RefDSConv(c1, c_, k1, s=1, p=None, d=1)
        self.cv2 = RefDSConv(c_, c2, k2, s=1, p=None, d=d2)
        self.add = shortcut and c1 == c2

    def forward(self, x):
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class RefDSC3k(RefC3):
    def __init__(self, c1, c2, n=1, shortcut=True, g=1, e=0.5, k1=3, k2=5, d2=1):
        super().__init__(c1, c2, n, shortcut, g, e)
        c_ = int(c2 * e)
        self.m = nn.Sequential(*(RefDSBottleneck(c_, c_, shortcut=shortcut, e=1.0, k1=k1, k2=k2, d2=d2)
                                 for _ in range(n)))


class RefDSC3k2(RefC2f):
    def __init__(self, c1, c2, n=1, dsc3k=False, e=0.5, g=1, shortcut=True, k1=3, k2=7, d2=1):
        super().__init__(c1, c2, n, shortcut, g, e)
        if dsc3k:
            self.m = nn.ModuleList(RefDSC3k(self.c, self.c, n=2, shortcut=shortcut, g=g, e=1.0, k1=k1, k2=k2, d2=d2)
                                   for _ in range(n))
        else:
            self.m = nn.ModuleList(RefDSBottleneck(self.c, self.c, shortcut=shortcut, e=1.0, k1=k1, k2=k2, d2=d2)
                                   for _ in range(n))


# ----------------------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------------------
def _compare(block, ref, x, train):
    randomize_bn(block)
    block.train(train)
    ref.train(train)
    # a bias feeding a training-mode BatchNorm has a mathematically zero gradient: compare it absolutely (1e-5)
    compare_to_reference(block, ref, x, same_param_names=True, grad_atol=1e-5, check_buffers=train)


# ----------------------------------------------------------------------------------------------------------
# (1) Same function, names and gradients as the official definition
# ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize(
    "args, kw, shape",
    [
        ((4, 6), {}, (2, 4, 9, 8)),
        ((4, 8, 5, 2), {}, (2, 4, 11, 9)),  # stride 2 (the backbone's DSConv [c, 3, 2])
        ((5, 3, 3), {"d": 2}, (1, 5, 9, 9)),
        ((3, 4, 4), {"bias": True}, (2, 3, 8, 7)),  # even kernel: size changes as in the official code
    ],
)
def test_dsconv_matches_official(args, kw, shape, train):
    block = DSConv(*args, **kw)
    assert_depthwise_on_lkconv(block, expect_some=True)
    _compare(block, RefDSConv(*args, **kw), torch.randn(shape), train)


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize(
    "args, kw",
    [((6, 6), {}), ((6, 6), {"shortcut": False, "k1": 5, "k2": 7, "d2": 2}), ((4, 6), {"e": 1.0})],
)
def test_dsbottleneck_matches_official(args, kw, train):
    block = DSBottleneck(*args, **kw)
    _compare(block, RefDSBottleneck(*args, **kw), torch.randn(2, args[0], 9, 10), train)


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("args, kw", [((6, 8, 2), {}), ((4, 4, 1), {"shortcut": False, "k2": 7, "d2": 2, "e": 1.0})])
def test_dsc3k_matches_official(args, kw, train):
    block = DSC3k(*args, **kw)
    assert_depthwise_on_lkconv(block, expect_some=True)
    _compare(block, RefDSC3k(*args, **kw), torch.randn(2, args[0], 8, 9), train)


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize(
    "args, kw",
    [
        ((8, 8, 2), {}),  # the yolov13 head: DSC3k2(c, c, n, shortcut=True)
        ((8, 16, 1, False, 0.25), {}),  # the yolov13 backbone: DSC3k2(c1, c2, n, False, 0.25)
        ((6, 8, 1, True), {"k2": 9, "d2": 2}),  # DSC3k inner blocks
        ((4, 8, 2, True, 0.5, 2), {"shortcut": False}),
    ],
)
def test_dsc3k2_matches_official(args, kw, train):
    block = DSC3k2(*args, **kw)
    assert_depthwise_on_lkconv(block, expect_some=True)
    _compare(block, RefDSC3k2(*args, **kw), torch.randn(2, args[0], 8, 7), train)


@pytest.mark.parametrize(
    "make, make_ref, c1",
    [
        (lambda: C2f(4, 8, 2, True), lambda: RefC2f(4, 8, 2, True), 4),
        (lambda: C3(4, 8, 1, True, 2), lambda: RefC3(4, 8, 1, True, 2), 4),
        (lambda: Conv(6, 6, 5, 1, None, 6), lambda: RefConv(6, 6, 5, 1, None, 6), 6),  # depthwise Conv
        (lambda: Conv(4, 8, 3, 2, None, 1, 2, False), lambda: RefConv(4, 8, 3, 2, None, 1, 2, False), 4),
    ],
)
def test_parents_match_official(make, make_ref, c1):
    block = make()
    assert_depthwise_on_lkconv(block)
    _compare(block, make_ref(), torch.randn(2, c1, 9, 8), train=True)


def test_dsc3k2_structure():
    """Official layout: DSC3k2(c1, c2, n, dsc3k=True) holds n DSC3k(c, c, n=2) on c = int(c2 * e) channels."""
    block = DSC3k2(8, 16, 3, True, 0.25)
    assert block.c == 4 and len(block.m) == 3
    assert all(isinstance(m, DSC3k) and len(m.m) == 2 for m in block.m)
    assert block.cv2.conv.in_channels == (2 + 3) * 4
    dw = block.m[0].m[1].cv2.dw
    assert isinstance(dw, DepthwiseConv2d) and dw.kernel_size == (7, 7) and dw.padding == (3, 3)


# ----------------------------------------------------------------------------------------------------------
# (2) BatchNorm folding
# ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "make, shape",
    [
        (lambda: DSConv(4, 8, 5, 2), (2, 4, 9, 9)),
        (lambda: DSConv(3, 4, 3, bias=True), (2, 3, 7, 7)),
        (lambda: Conv(6, 6, 3, 1, None, 6), (2, 6, 8, 8)),
        (lambda: DSC3k2(8, 8, 2, True), (2, 8, 8, 9)),
        (lambda: DSC3k2(8, 16, 1, False, 0.25), (2, 8, 8, 9)),
    ],
)
def test_reparameterize(make, shape):
    block = randomize_bn(make()).eval()
    x = torch.randn(shape)
    with torch.no_grad():
        y = block(x)
        block.reparameterize()
        y_fused = block(x)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in block.modules())
    assert_depthwise_on_lkconv(block, expect_some=True)
    assert rel_error(y_fused, y) < 1e-5, rel_error(y_fused, y)
    block.reparameterize()  # idempotent
    with torch.no_grad():
        assert rel_error(block(x), y) < 1e-5


def test_reparameterize_names_and_model_walk():
    block = randomize_bn(DSC3k2(8, 8, 1, True)).eval()
    model = nn.Sequential(block)
    x = torch.randn(2, 8, 8, 8)
    with torch.no_grad():
        y = model(x)
        lkconv.reparameterize(model)
        y_fused = model(x)
    keys = set(block.state_dict())
    assert {"cv1.conv.weight", "cv1.conv.bias", "m.0.cv1.conv.bias", "m.0.m.0.cv1.pw.bias"} <= keys
    assert not any(".bn." in k for k in keys)
    assert rel_error(y_fused, y) < 1e-5


# ----------------------------------------------------------------------------------------------------------
# (3) channels_last, (4) bf16 autocast
# ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("train", [True, False])
def test_channels_last(train):
    block = randomize_bn(DSC3k2(8, 8, 1, True)).train(train)
    x = torch.randn(2, 8, 9, 10)
    check_channels_last(block, x)


@pytest.mark.parametrize("fused", [False, True])
def test_bf16_autocast(fused):
    block = randomize_bn(DSC3k2(8, 8, 2, True)).eval()
    if fused:
        block.reparameterize()
    x = torch.randn(2, 8, 9, 10)
    check_bf16_autocast_output(block, x, tol=3e-2)


def test_bf16_autocast_backward():
    block = randomize_bn(DSC3k2(8, 8, 1, False)).train()
    x = torch.randn(2, 8, 8, 8, requires_grad=True)
    check_bf16_autocast_backward(block, x, bf16_input=False)


# ----------------------------------------------------------------------------------------------------------
# (5) Bad configuration
# ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: DSConv(0, 4), "c_in"),
        (lambda: DSConv(4, 4, 0), "k"),
        (lambda: DSConv(4, 4, 3, d=0), "d"),
        (lambda: Conv(6, 4, 3, g=4), "divisible by g"),
        (lambda: DSBottleneck(4, 4, e=0.1), "e must"),
        (lambda: DSC3k2(4, 2, 1, False, 0.25), "e must"),
        (lambda: DSC3k(4, 4, -1), "n must"),
    ],
)
def test_bad_configuration(make, match):
    with pytest.raises(ValueError, match=match):
        make()
