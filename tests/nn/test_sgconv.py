"""GConv (SGConv) against a plain-PyTorch rendering of the official gconv_standalone.py (ctlllll/SGConv), and
HyperKernelConv2d against a direct F.conv2d rendering of its documented definition."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lkconv.nn.sgconv import GConv, HyperKernelConv2d, SGConv, _fft_conv1d, _fft_depthwise_conv2d_same
from lkconv.testing import rel_error


# ----------------------------------------------------------------------------------------------------------
# Reference: the official GConv, written with torch only (einsum for opt_einsum's contract, reshapes for
# einops' rearrange).
# ----------------------------------------------------------------------------------------------------------
def ref_activation(activation=None, dim=-1):
    if activation in [None, "id", "identity", "linear"]:
        return nn.Identity()
    return {"tanh": nn.Tanh(), "relu": nn.ReLU(), "gelu": nn.GELU(), "swish": nn.SiLU(), "silu": nn.SiLU(),
            "glu": nn.GLU(dim=dim), "sigmoid": nn.Sigmoid()}[activation]


class RefTransposedLinear(nn.Module):
    def __init__(self, d_input, d_output):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(d_output, d_input))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        self.bias = nn.Parameter(torch.empty(d_output))
        nn.init.uniform_(self.bias, -1 / math.sqrt(d_input), 1 / math.sqrt(d_input))

    def forward(self, x):
        num_axis = len(x.shape[2:])
        return torch.einsum("bu...,vu->bv...", x, self.weight) + self.bias.view(-1, *[1] * num_axis)


def ref_linear_activation(d_input, d_output, transposed, activation, weight_norm):
    if activation == "glu":
        d_output *= 2
    linear = RefTransposedLinear(d_input, d_output) if transposed else nn.Linear(d_input, d_output)
    if weight_norm:
        linear = nn.utils.weight_norm(linear)
    if activation is not None:
        linear = nn.Sequential(linear, ref_activation(activation, dim=1 if transposed else -1))
    return linear


class RefTransposedLN(nn.Module):
    def __init__(self):
        super().__init__()
        self.m = nn.Parameter(torch.zeros(1))
        self.s = nn.Parameter(torch.ones(1))

    def forward(self, x):
        s, m = torch.std_mean(x, dim=1, unbiased=False, keepdim=True)
        return (self.s / s) * (x - m + self.m)


class RefNormalization(nn.Module):
    def __init__(self, d, transposed):
        super().__init__()
        self.transposed = transposed
        self.norm = RefTransposedLN() if transposed else nn.LayerNorm(d)

    def forward(self, x):
        shape = x.shape
        x = x.reshape(shape[0], shape[1], -1) if self.transposed else x.reshape(shape[0], -1, shape[-1])
        return self.norm(x).view(shape)


class RefGConv(nn.Module):
    def __init__(self, d_model, l_max=1, channels=1, bidirectional=False, activation="gelu", ln=False,
                 postact=None, weight_norm=False, transposed=True, linear=False, mode="cat_randn", **kernel_args):
        super().__init__()
        self.h = d_model
        self.bidirectional = bidirectional
        self.channels = channels
        self.transposed = transposed
        self.linear = linear
        self.mode = mode
        self.D = nn.Parameter(torch.randn(channels, self.h))
        if self.bidirectional:
            channels *= 2
        if not self.linear:
            self.activation = ref_activation(activation)
            self.dropout = nn.Identity()
            self.norm = RefNormalization(self.h * self.channels, transposed) if ln else nn.Identity()
            self.output_linear = ref_linear_activation(self.h * self.channels, self.h, transposed, postact,
                                                       weight_norm)
        self.init_scale = kernel_args.get("init_scale", 0)
        self.kernel_dim = kernel_args.get("kernel_dim", 64)
        self.num_scales = kernel_args.get("n_scales", 1 + math.ceil(math.log2(l_max / self.kernel_dim))
                                          - self.init_scale)
        if self.num_scales is None:
            self.num_scales = 1 + math.ceil(math.log2(l_max / self.kernel_dim)) - self.init_scale
        self.kernel_list = nn.ParameterList()
        decay_min = kernel_args.get("decay_min", 2)
        decay_max = kernel_args.get("decay_max", 2)
        for _ in range(self.num_scales):
            self.kernel_list.append(nn.Parameter(torch.randn(channels, self.h, self.kernel_dim)))
        if "learnable" in mode:
            self.decay = nn.Parameter(torch.rand(self.h) * (decay_max - decay_min) + decay_min)
            if "fixed" in mode:
                self.decay.requires_grad = False
            self.register_buffer("multiplier", torch.tensor(1.0))
        else:
            self.register_buffer("multiplier", torch.linspace(decay_min, decay_max, self.h).view(1, -1, 1))
        self.register_buffer("kernel_norm", torch.ones(channels, self.h, 1))
        self.register_buffer("kernel_norm_initialized", torch.tensor(0, dtype=torch.bool))

    def forward(self, u, return_kernel=False):
        if not self.transposed:
            u = u.transpose(-1, -2)
        L = u.size(-1)
        kernel_list = []
        interpolate_mode = "nearest" if "nearest" in self.mode else "linear"
        multiplier = self.multiplier
        if "sum" in self.mode:
            for i in range(self.num_scales):
                kernel = F.pad(
                    F.interpolate(self.kernel_list[i], scale_factor=2 ** (i + self.init_scale),
                                  mode=interpolate_mode),
                    (0, self.kernel_dim * 2 ** (self.num_scales - 1 + self.init_scale)
                     - self.kernel_dim * 2 ** (i + self.init_scale)),
                ) * multiplier ** (self.num_scales - i - 1)
                kernel_list.append(kernel)
            k = sum(kernel_list)
        else:
            for i in range(self.num_scales):
                kernel = F.interpolate(self.kernel_list[i], scale_factor=2 ** (max(0, i - 1) + self.init_scale),
                                       mode=interpolate_mode) * multiplier ** (self.num_scales - i - 1)
                kernel_list.append(kernel)
            k = torch.cat(kernel_list, dim=-1)
        if "learnable" in self.mode:
            k = k * torch.exp(-self.decay.view(1, -1, 1) * torch.log(
                torch.arange(k.size(-1), device=k.device) + 1).view(1, 1, -1))
        if not self.kernel_norm_initialized:
            self.kernel_norm = k.norm(dim=-1, keepdim=True).detach()
            self.kernel_norm_initialized = torch.tensor(1, dtype=torch.bool, device=k.device)
        if k.size(-1) > L:
            k = k[..., :L]
        elif k.size(-1) < L:
            k = F.pad(k, (0, L - k.size(-1)))
        k = k / self.kernel_norm
        if self.bidirectional:
            k0, k1 = k.reshape(2, -1, *k.shape[1:])
            k = F.pad(k0, (0, L)) + F.pad(k1.flip(-1), (L, 0))
        k_f = torch.fft.rfft(k, n=2 * L)
        u_f = torch.fft.rfft(u, n=2 * L)
        y_f = torch.einsum("bhl,chl->bchl", u_f, k_f)
        y = torch.fft.irfft(y_f, n=2 * L)[..., :L]
        y = y + torch.einsum("bhl,ch->bchl", u, self.D)
        y = y.reshape(*y.shape[:-3], -1, y.shape[-1])
        if not self.linear:
            y = self.dropout(self.activation(y))
        if not self.transposed:
            y = y.transpose(-1, -2)
        if not self.linear:
            y = self.norm(y)
            y = self.output_linear(y)
        if return_kernel:
            return y, k
        return y, None


def _state_dict_for_ref(block):
    """Our weight-normalized linear stores weight_g / weight_v like nn.utils.weight_norm: same keys."""
    return block.state_dict()


def _compare_gconv(block, ref, u, tol=1e-5):
    ref.load_state_dict(_state_dict_for_ref(block), strict=True)
    assert set(block.state_dict()) == set(ref.state_dict())
    u1 = u.clone().requires_grad_(True)
    u2 = u.clone().requires_grad_(True)
    (y1, k1), (y2, k2) = block(u1, return_kernel=True), ref(u2, return_kernel=True)
    assert y1.shape == y2.shape
    assert rel_error(y1, y2) < tol, f"output rel error {rel_error(y1, y2)}"
    assert rel_error(k1, k2) < tol, "returned kernel"
    assert bool(block.kernel_norm_initialized) and rel_error(block.kernel_norm, ref.kernel_norm) < 1e-6
    g = torch.randn_like(y2)
    y1.backward(g)
    y2.backward(g)
    assert rel_error(u1.grad, u2.grad) < tol, f"input grad rel error {rel_error(u1.grad, u2.grad)}"
    ref_params = {n: p for n, p in ref.named_parameters() if p.requires_grad}
    mine = {n: p for n, p in block.named_parameters() if p.requires_grad}
    assert set(ref_params) == set(mine)
    for name, p in mine.items():
        assert p.grad is not None, name
        err = rel_error(p.grad, ref_params[name].grad)
        assert err < tol, f"grad of {name}: rel error {err}"


# ----------------------------------------------------------------------------------------------------------
# (1) GConv: same function, names and gradients as the official definition
# ----------------------------------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:`torch.nn.utils.weight_norm` is deprecated")
@pytest.mark.parametrize(
    "kw, shape",
    [
        (dict(d_model=4, l_max=64, kernel_dim=8), (2, 4, 64)),  # 4 scales, kernel length == L
        # the LRA recipe: bidirectional, GLU output, fixed polynomial decay; kernel (64) longer than L (50)
        (dict(d_model=4, l_max=64, kernel_dim=8, bidirectional=True, channels=2, postact="glu",
              mode="cat_randn_learnable_fixed", decay_min=1, decay_max=1), (2, 4, 50)),
        # sum of scales, nearest upsampling, learnable decay, (B, L, H) layout with LayerNorm; L > kernel length
        (dict(d_model=3, l_max=32, kernel_dim=4, mode="sum_randn_nearest_learnable", transposed=False, ln=True,
              activation="relu"), (2, 40, 3)),
        (dict(d_model=5, l_max=40, kernel_dim=5, linear=True, channels=2, n_scales=None), (1, 5, 33)),
        (dict(d_model=4, l_max=16, kernel_dim=4, ln=True, weight_norm=True, postact="gelu", decay_min=1.5,
              decay_max=3.0, init_scale=1), (2, 4, 16)),
        (dict(d_model=3, l_max=16, kernel_dim=4, n_scales=2, bidirectional=True, transposed=False), (2, 9, 3)),
    ],
)
def test_gconv_matches_official(kw, shape):
    block = GConv(**kw)
    ref = RefGConv(**kw)
    _compare_gconv(block, ref, torch.randn(shape))


def test_gconv_layout_and_names():
    block = GConv(4, l_max=64, channels=2, bidirectional=True, postact="glu", mode="cat_randn_learnable_fixed",
                  kernel_dim=8)
    assert SGConv is GConv
    assert block.num_scales == 4
    assert [p.shape for p in block.kernel_list] == [(4, 4, 8)] * 4
    assert block.D.shape == (2, 4) and block.kernel_norm.shape == (4, 4, 1)
    assert not block.decay.requires_grad and block.multiplier.shape == ()
    assert block.output_linear[0].weight.shape == (8, 8)
    assert set(block.state_dict()) == {
        "D", "kernel_list.0", "kernel_list.1", "kernel_list.2", "kernel_list.3", "decay", "multiplier",
        "kernel_norm", "kernel_norm_initialized", "output_linear.0.weight", "output_linear.0.bias"}
    # the concatenated kernel is 8 + 8 + 16 + 32 = 64 taps long
    assert block.kernel().shape == (4, 4, 64)


def test_kernel_norm_is_set_once():
    block = GConv(4, l_max=32, kernel_dim=8)
    assert not bool(block.kernel_norm_initialized)
    u = torch.randn(2, 4, 32)
    block(u)
    norm = block.kernel_norm.clone()
    assert torch.allclose(norm, block.kernel().norm(dim=-1, keepdim=True))
    with torch.no_grad():
        block.kernel_list[0].mul_(3.0)
    block(u)
    assert torch.equal(block.kernel_norm, norm)


def test_cos_init():
    block = GConv(3, l_max=16, kernel_dim=8, mode="cat_cos")
    first = block.kernel_list[0][0]
    expect = {tuple(torch.cos(torch.linspace(0, 2 * i * math.pi, 8)).tolist()) for i in range(3)}
    assert {tuple(row.tolist()) for row in first} == expect


def test_fft_conv1d_matches_direct_convolution():
    x = torch.randn(2, 3, 11, dtype=torch.float64)
    k = torch.randn(2, 3, 7, dtype=torch.float64)
    d = torch.randn(2, 3, dtype=torch.float64)
    y = _fft_conv1d(x, k, d)
    # causal conv: y[t] = sum_{s<=t} k[t-s] x[s]
    direct = torch.zeros(2, 2, 3, 11, dtype=torch.float64)
    for t in range(11):
        for s in range(max(0, t - 6), t + 1):
            direct[..., t] += k[None, :, :, t - s] * x[:, None, :, s]
    direct += d[None, :, :, None] * x[:, None]
    assert rel_error(y, direct) < 1e-12
    # a length-2L kernel wraps: tap 2L - m acts on x[t + m]
    k2 = torch.zeros(1, 3, 22, dtype=torch.float64)
    k2[..., 22 - 2] = 1.0
    y2 = _fft_conv1d(x, k2, torch.zeros(1, 3, dtype=torch.float64))
    assert rel_error(y2[:, 0, :, :9], x[:, :, 2:]) < 1e-12 and y2[:, 0, :, 9:].abs().max() < 1e-12


def test_gconv_non_contiguous_input():
    block = GConv(4, l_max=32, kernel_dim=8, transposed=False)
    u = torch.randn(2, 4, 32)
    y, _ = block(u.transpose(1, 2))
    y2, _ = block(u.transpose(1, 2).contiguous())
    assert rel_error(y, y2) < 1e-6


def test_gconv_bf16_autocast():
    block = GConv(4, l_max=64, kernel_dim=8, bidirectional=True, postact="glu")
    u = torch.randn(2, 4, 64, requires_grad=True)
    y, _ = block(u)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y_bf, _ = block(u)
    assert y_bf.shape == y.shape
    assert rel_error(y_bf.float(), y) < 3e-2
    y_bf.float().square().sum().backward()
    assert torch.isfinite(u.grad).all()


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(d_model=4), "n_scales"),  # l_max=1 leaves no scale (the official constructor builds none)
        (dict(d_model=4, l_max=64, kernel_dim=8, n_scales=0), "n_scales"),
        (dict(d_model=0, l_max=64), "d_model"),
        (dict(d_model=4, l_max=64, channels=0), "channels"),
        (dict(d_model=4, l_max=64, hyper_act="relu"), "hyper_act"),
        (dict(d_model=4, l_max=64, mode="cat"), "mode"),
        (dict(d_model=4, l_max=64, mode="randn"), "mode"),
        (dict(d_model=4, l_max=64, activation="modrelu"), "activation"),
        (dict(d_model=4, l_max=64, postact="bogus"), "postact"),
        (dict(d_model=4, l_max=64, kernel_size=3), "kernel_args"),
        (dict(d_model=4, l_max=64, initializer="xavier", postact="glu"), "initializer"),
        (dict(d_model=4, l_max=64, initializer="bogus"), "initializer"),
        (dict(d_model=4, l_max=64, kernel_dim=0), "kernel_dim"),
        (dict(d_model=4, l_max=64, dropout=1.0), "dropout"),
    ],
)
def test_gconv_bad_configuration(kw, match):
    with pytest.raises(ValueError, match=match):
        GConv(**kw)


def test_gconv_bad_input():
    block = GConv(4, l_max=64, kernel_dim=8)
    with pytest.raises(ValueError, match="channels"):
        block(torch.randn(2, 5, 64))
    with pytest.raises(ValueError, match="3-D"):
        block(torch.randn(2, 4))


# ----------------------------------------------------------------------------------------------------------
# HyperKernelConv2d: the documented definition, written directly (features, MLP, F.conv2d "same")
# ----------------------------------------------------------------------------------------------------------
def ref_hyper_kernel(block, h, w):
    nf = block.num_frequencies
    freqs = [math.pi * 2.0 ** f for f in range(nf)]
    feats = torch.empty(h, w, 4 * nf)
    us = torch.linspace(-1, 1, h)
    vs = torch.linspace(-1, 1, w)
    for i in range(h):
        for j in range(w):
            row = ([math.sin(f * us[i]) for f in freqs] + [math.cos(f * us[i]) for f in freqs]
                   + [math.sin(f * vs[j]) for f in freqs] + [math.cos(f * vs[j]) for f in freqs])
            feats[i, j] = torch.tensor(row)
    l0, l2 = block.kernel_net[0], block.kernel_net[2]
    out = F.linear(F.gelu(F.linear(feats, l0.weight, l0.bias)), l2.weight, l2.bias)
    return out.permute(2, 0, 1) / (h * w)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize("shape, kw", [((2, 3, 9, 7), {}), ((1, 4, 8, 10), {"hidden_dim": 8, "num_frequencies": 3}),
                                       ((2, 2, 5, 5), {"bias": False}), ((1, 3, 1, 6), {})])
def test_hyper_kernel_conv_matches_definition(shape, kw):
    block = HyperKernelConv2d(shape[1], **kw)
    if block.bias is not None:
        with torch.no_grad():
            block.bias.normal_()
    x = torch.randn(shape)
    x1 = x.clone().requires_grad_(True)
    x2 = x.clone().requires_grad_(True)
    y = block(x1)
    kernel = ref_hyper_kernel(block, shape[2], shape[3])
    assert rel_error(block.kernel(shape[2], shape[3]), kernel) < 1e-5
    ref = F.conv2d(x2, kernel[:, None], block.bias, padding="same", groups=shape[1])
    assert y.shape == ref.shape == x.shape
    assert rel_error(y, ref) < 1e-5, rel_error(y, ref)
    g = torch.randn_like(y)
    params = [p for p in block.parameters()]
    grads = torch.autograd.grad(y, [x1] + params, g)
    ref_grads = torch.autograd.grad(ref, [x2] + params, g)
    for name, a, b in zip(["x"] + [n for n, _ in block.named_parameters()], grads, ref_grads):
        assert rel_error(a, b) < 1e-5, f"grad of {name}: {rel_error(a, b)}"


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize("shape, kshape", [((2, 3, 9, 7), (3, 9, 7)), ((1, 2, 6, 8), (2, 3, 4)),
                                          ((1, 2, 5, 5), (2, 6, 2))])
def test_fft_depthwise_conv2d_same(shape, kshape):
    x = torch.randn(shape, dtype=torch.float64)
    k = torch.randn(kshape, dtype=torch.float64)
    y = _fft_depthwise_conv2d_same(x, k)
    assert rel_error(y, F.conv2d(x, k[:, None], padding="same", groups=shape[1])) < 1e-12


def test_hyper_kernel_conv_channels_last():
    block = HyperKernelConv2d(4)
    x = torch.randn(2, 4, 9, 8)
    y = block(x)
    y_cl = block(x.contiguous(memory_format=torch.channels_last))
    assert y_cl.is_contiguous(memory_format=torch.channels_last)
    assert rel_error(y_cl, y) < 1e-5


def test_hyper_kernel_conv_bf16_autocast():
    block = HyperKernelConv2d(4)
    with torch.no_grad():
        block.bias.normal_()
    x = torch.randn(2, 4, 9, 8, requires_grad=True)
    y = block(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y_bf = block(x)
    assert rel_error(y_bf.float(), y) < 2e-2
    y_bf.float().sum().backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("kw, match", [(dict(channels=0), "channels"), (dict(channels=4, hidden_dim=0), "hidden_dim"),
                                       (dict(channels=4, num_frequencies=0), "num_frequencies")])
def test_hyper_kernel_conv_bad_configuration(kw, match):
    with pytest.raises(ValueError, match=match):
        HyperKernelConv2d(**kw)


def test_hyper_kernel_conv_bad_input():
    with pytest.raises(ValueError, match="expected input"):
        HyperKernelConv2d(4)(torch.randn(1, 3, 5, 5))
