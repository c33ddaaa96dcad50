"""Every block of ``lkconv.nn`` on the CUDA device against the same block (same state) in float64 on CPU.

For each block (small configuration, parameters and BatchNorm statistics randomised a little), in training
and in eval mode: the float32 CUDA output, input gradients and parameter gradients (one random output
gradient) are within 1e-4 relative error of the float64 CPU ones (tf32 off, so plain PyTorch convs and
matmuls are exact float32; parameters whose reference gradient is zero are compared with an absolute
tolerance scaled by the largest gradient). Also on CUDA: a channels_last input gives the NCHW result, and
under bf16 autocast the output keeps its shape, is close to float32 and backward gives finite gradients.

The depthwise convs run with ``LKCONV_AUTOTUNE=0`` (the heuristic choice: lkconv's direct kernels for kernels
of 3x3 and larger), so no timing decides which kernels are checked and no extra candidates are compiled.
"""
import copy

import pytest
import torch
from torch.nn.modules.batchnorm import _BatchNorm

from lkconv import nn as lknn
from lkconv.testing import rel_error

from ..conftest import gpu

TOL = 1e-4
X = (2, 8, 16, 15)  # the usual NCHW input

# (name, factory, input shapes): one block per test id, configurations as in the block's own tests. CKS (and
# SDLSKA around it) runs training-mode BatchNorm on globally pooled (N, C, 1, 1) features, whose float32 backward
# is ill-conditioned for a batch of 2 (errors near 1e-3 at times): those two get a batch of 16 on a small map.
BLOCKS = [
    ("DepthwiseConv2d", lambda: lknn.DepthwiseConv2d(8, 8, 7, padding=3), [X]),
    ("DepthwiseConv2d_strided", lambda: lknn.DepthwiseConv2d(8, 16, (5, 3), stride=2, padding=(2, 1),
                                                             padding_mode="reflect"), [X]),
    ("AdaptiveFrequencyFilter", lambda: lknn.AdaptiveFrequencyFilter(16, 4), [(2, 16, 16, 15)]),
    ("CKS", lambda: lknn.CKS(16), [(16, 16, 4, 4)] * 3),
    ("SDLSKA", lambda: lknn.SDLSKA(8, 23), [(16, 8, 4, 4)]),
    ("CFSRBlock", lambda: lknn.CFSRBlock(8, 9, 3, False, 2), [X]),
    ("CFSRConvMod", lambda: lknn.CFSRConvMod(8, 9, 3), [X]),
    ("CFSREdgeFFN", lambda: lknn.CFSREdgeFFN(8, 2), [X]),
    ("CFSRReparamLargeKernelConv", lambda: lknn.CFSRReparamLargeKernelConv(8, 8, 9, 1, 8, 3), [X]),
    ("Dcls2d", lambda: lknn.Dcls2d(8, 8, 5, 1, 4, 9, 8, True, "zeros", "gauss"), [X]),
    ("FFBlock", lambda: lknn.FFBlock(8, 7, True, True, 3, 7, 7), [X]),
    ("FFNetChannelMixer", lambda: lknn.FFNetChannelMixer(8, 7, 3), [X]),
    ("FFNetRepVGGDW", lambda: lknn.FFNetRepVGGDW(8, 8, 7), [X]),
    ("FFNifiedAttention", lambda: lknn.FFNifiedAttention(8, 7, 7), [X]),
    ("InceptionDWConv2d", lambda: lknn.InceptionDWConv2d(16), [(2, 16, 16, 15)]),
    ("LKP", lambda: lknn.LKP(16, 7, 3, 8), [(2, 16, 16, 15)]),
    ("SKA", lambda: lknn.SKA(), [(2, 16, 16, 15), (2, 4, 9, 16, 15)]),
    ("LSConv", lambda: lknn.LSConv(16), [(2, 16, 16, 15)]),
    ("FGM", lambda: lknn.FGM(8), [X]),
    ("FLKPE", lambda: lknn.FLKPE(8, 3), [(2, 8, 8, 7)]),
    ("LKPE", lambda: lknn.LKPE(16), [(2, 16, 8, 7)]),
    ("OmniKernel", lambda: lknn.OmniKernel(8, 11), [X]),
    ("ConvFFN", lambda: lknn.ConvFFN(8, 16, 8, drop_path=0.0), [X]),
    ("RepLKBlock", lambda: lknn.RepLKBlock(8, 16, 13, 5, 0.0), [X]),
    ("ReparamLargeKernelConv", lambda: lknn.ReparamLargeKernelConv(8, 8, 13, 1, 8, 5), [X]),
    ("SeparableLargeKernelConv", lambda: lknn.SeparableLargeKernelConv(8, 9, rank=2), [X]),
    ("GConv", lambda: lknn.GConv(8, l_max=64, kernel_dim=8), [(2, 8, 64)]),  # SGConv is GConv
    ("HyperKernelConv2d", lambda: lknn.HyperKernelConv2d(8), [X]),
    ("SLaKBlock", lambda: lknn.SLaKBlock(8, kernel_size=(11, 5), Decom=True), [X]),
    ("SLaKLargeKernelConv", lambda: lknn.SLaKLargeKernelConv(8, 8, 13, 1, 8, 5, Decom=True), [X]),
    ("DilatedReparamBlock", lambda: lknn.DilatedReparamBlock(8, 13), [X]),
    ("UniRepLKNetBlock", lambda: lknn.UniRepLKNetBlock(8, 7), [X]),
    ("LKA", lambda: lknn.LKA(8), [X]),
    ("VANAttention", lambda: lknn.VANAttention(8), [X]),
    ("VANBlock", lambda: lknn.VANBlock(8), [X]),
    ("DSC3k", lambda: lknn.DSC3k(8, 8, n=2), [X]),
    ("DSC3k2", lambda: lknn.DSC3k2(8, 8, 2, True), [X]),
    ("DSBottleneck", lambda: lknn.DSBottleneck(8, 8), [X]),
    ("DSConv", lambda: lknn.DSConv(8, 12, 7), [X]),
]
IDS = [b[0] for b in BLOCKS]


@torch.no_grad()
def build(make):
    """make() with every parameter perturbed a little (scaled by N(1, 0.2^2), plus N(0, 0.05^2), so layer
    scales of 1e-6 matter) and random BatchNorm running statistics."""
    block = make()
    for p in block.parameters():
        p.mul_(1 + 0.2 * torch.randn_like(p)).add_(0.05 * torch.randn_like(p))
    for m in block.modules():
        if isinstance(m, _BatchNorm):
            m.running_mean.normal_(0, 0.3)
            m.running_var.uniform_(0.5, 2.0)
    return block


def _out(y):
    return y[0] if isinstance(y, tuple) else y  # GConv returns (y, kernel or None)


def assert_grads_close(got, ref, tol=TOL):
    """{name: grad} against {name: reference grad}: each within ``tol`` relative error, or, for a reference that
    is zero or nearly so (the bias before a training-mode BatchNorm; a weight there whose gradient cancels to an
    eps-sized rest), within ``tol`` times the largest reference gradient magnitude, elementwise."""
    scale = max(r.abs().max().item() for r in ref.values())
    for name, r in ref.items():
        g = got[name]
        assert g is not None and g.shape == r.shape, name
        err, diff = rel_error(g, r), (g.detach().cpu().double() - r).abs().max().item()
        assert err < tol or diff < tol * scale, f"grad of {name}: rel error {err}, abs {diff} (max {scale})"


def check_against_float64(block, shapes, device, train, tol=TOL):
    """A copy of ``block`` in float32 on ``device`` against a float64 copy on CPU: outputs, input gradients and
    parameter gradients after one random output gradient."""
    ref = copy.deepcopy(block).double().train(train)
    mine = copy.deepcopy(block).to(device).train(train)
    xs = [torch.randn(s) for s in shapes]  # float32 values, exact in float64
    x64 = [x.double().requires_grad_(True) for x in xs]
    x32 = [x.to(device).requires_grad_(True) for x in xs]
    y64, y32 = _out(ref(*x64)), _out(mine(*x32))
    assert y32.shape == y64.shape and y32.dtype == torch.float32
    assert rel_error(y32, y64) < tol, f"output rel error {rel_error(y32, y64)}"
    g = torch.randn(y64.shape)
    y64.backward(g.double())
    y32.backward(g.to(device))
    ref_grads = {f"input {i}": x.grad for i, x in enumerate(x64)}
    ref_grads.update((n, p.grad) for n, p in ref.named_parameters() if p.requires_grad)
    got = {f"input {i}": x.grad for i, x in enumerate(x32)}
    got.update((n, p.grad) for n, p in mine.named_parameters() if p.requires_grad)
    unused = [n for n, r in ref_grads.items() if r is None]  # e.g. FGM.conv: in the state_dict, not in forward
    assert all(got[n] is None for n in unused), unused
    assert_grads_close(got, {n: r for n, r in ref_grads.items() if r is not None}, tol)


@pytest.fixture
def exact_fp32(monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    monkeypatch.setenv("LKCONV_AUTOTUNE", "0")


@gpu
@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("name,make,shapes", BLOCKS, ids=IDS)
def test_cuda_matches_float64_cpu(name, make, shapes, train, exact_fp32):
    check_against_float64(build(make), shapes, "cuda", train)


@gpu
@pytest.mark.parametrize("name,make,shapes", BLOCKS, ids=IDS)
def test_cuda_channels_last_and_bf16_autocast(name, make, shapes, exact_fp32):
    block = build(make).cuda()
    xs = [torch.randn(s, device="cuda") for s in shapes]
    with torch.no_grad():
        y = _out(block(*xs))
        y_cl = _out(block(*[x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x for x in xs]))
    assert y_cl.shape == y.shape and rel_error(y_cl, y) < TOL, f"channels_last: {rel_error(y_cl, y)}"

    xs = [x.requires_grad_(True) for x in xs]
    with torch.autocast("cuda", dtype=torch.bfloat16):
        y_bf = _out(block(*xs))
    assert y_bf.shape == y.shape
    assert rel_error(y_bf.float(), y) < 5e-2, f"bf16 autocast vs fp32: {rel_error(y_bf.float(), y)}"
    y_bf.float().backward(torch.randn_like(y))
    assert all(x.grad is not None and torch.isfinite(x.grad).all() for x in xs)
    assert all(torch.isfinite(p.grad).all() for p in block.parameters() if p.grad is not None)
