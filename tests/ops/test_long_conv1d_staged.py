"""long_conv1d's staged kernels (transforms past fused_fft.MAX_N, through a global workspace) against the float64
direct sum, every gradient."""
from dataclasses import replace

import pytest
import torch

import lkconv
from lkconv.ops.conv1d import fused_fft, long_conv1d_reference, staged_fft
from lkconv.testing import rel_error, tolerance

from ..conftest import gpu
from .test_long_conv1d_fused import _check, _check_config, _runs_here


@pytest.mark.parametrize("b,length,lk,causal,skip,cfg", [
    (2, 2000, 2000, True, True, dict(row_length=256, block_cols=16)),  # 4096 = 16 x 256: one row block of 16
    (3, 1500, 700, False, False, dict(row_length=256, block_cols=32)),  # an odd batch: a half-empty pair
    (1, 2049, 100, False, True, dict(row_length=256, block_cols=16, products="embedded")),
    (2, 4000, 3000, True, True, dict(row_length=512, block_rows=16, block_cols=32)),  # 8192 = 16 x 512, 2 blocks
    (2, 3000, 3000, False, True, dict(row_length=256, block_rows=16, products="embedded", column_rows=16,
                                      output_rows=16)),  # 32 x 256: two column steps, two output row blocks
    (3, 2500, 1200, True, True, dict(row_length=256, rows_per_program=2, block_cols=16)),
    (2, 3000, 2000, False, False, dict(row_length=512, rows_per_program=4, block_rows=16, products="embedded")),
    (3, 2500, 2000, False, True, dict(row_length=512, rows_per_program=2, block_cols=32, twiddles="factored")),
    (2, 2000, 2000, True, True, dict(row_length=256, twiddles="factored")),  # 16 rows of 256 side by side
    (5, 2000, 2000, True, True, dict(row_length=256, groups_per_program=2)),  # 3 groups: a chunk past the batch
    (4, 4000, 3000, False, True, dict(row_length=512, block_rows=16, groups_per_program=2, twiddles="factored")),
    (3, 5000, 5000, True, True, dict(row_length=256, block_cols=32)),  # 12288 = 48 x 256: a masked column block
    (2, 10000, 8000, False, True, dict(row_length=256, block_cols=32, products="embedded")),  # 20480 = 80 x 256
    (2, 5000, 4000, True, True, dict(row_length=1024, block_cols=64)),  # 12288 = 12 x 1024: M padded to 16
])
def test_staged_kernels_match_direct_sum(b, length, lk, causal, skip, cfg, device):
    """y, dx, dk and dD against float64 with the staged kernels forced (StagedConfig) on transforms the fused
    kernels could also serve: (M, Q) splits of 16 x 256, 16 x 512 and 32 x 256, one and two spectrum blocks per
    row, one, two, four and sixteen rows per program, one or two sequence pairs per row program (the kernel
    spectrum read once or per block), both ways of making complex products, twiddles read whole or made from
    their factors, causal and centred kernels; M not a power of two (12, 48, 80: the column kernels' last row
    block part empty).
    Six transforms in a row: the tolerance is float32's, not the four-step fused kernels' 1e-5."""
    if not _runs_here(device):
        pytest.skip("the staged kernels need CUDA, or TRITON_INTERPRET=1 on CPU")
    _check_config(b, 2, length, lk, causal, skip, staged_fft.StagedConfig(**cfg), device,
                  tolerance("fft", torch.float32, device.type))


@pytest.mark.parametrize("b,length,lk,causal,skip,cfg", [
    (3, 2000, 1500, True, True, dict(row_length=256, block_cols=16)),  # one block per row: joint
    (2, 3000, 3000, False, False, dict(row_length=256, rows_per_program=2, products="embedded")),  # joint
    (2, 4000, 3000, False, True, dict(row_length=512, block_rows=16, block_cols=32)),  # two blocks: separate
    (2, 3000, 2500, True, True, dict(row_length=256, twiddles="factored")),  # joint, factored twiddles
    (3, 5000, 5000, True, True, dict(row_length=256, rows_per_program=4)),  # joint at 12288 = 48 x 256
])
def test_staged_joint_backward(b, length, lk, causal, skip, cfg, device, monkeypatch):
    """StagedConfig.joint_backward: dx's rows made in the weight gradient's row kernel (one spectrum block per
    row; with two it falls back to separate kernels, the only case that runs the convolution for dx): y, dx, dk
    and dD against float64, over odd and even batches, one and two rows per program, both product forms."""
    if not _runs_here(device):
        pytest.skip("the staged kernels need CUDA, or TRITON_INTERPRET=1 on CPU")
    config = staged_fft.StagedConfig(joint_backward=True, **cfg)
    plan = staged_fft._plan(staged_fft.transform_size(length, lk), torch.float32, config)
    separate = plan.bk < plan.n1
    convolve = staged_fft._convolve  # every staged convolution, the separate dx included
    calls = []
    monkeypatch.setattr(staged_fft, "_convolve", lambda *a, **kw: calls.append(1) or convolve(*a, **kw))
    _check_config(b, 2, length, lk, causal, skip, config, device, tolerance("fft", torch.float32, device.type))
    assert len(calls) == (2 if separate else 1)  # the forward's, and the separate dx's


@pytest.mark.parametrize("b,c,length,lk,causal,skip,cfg", [
    (2, 2, 2000, 2000, True, True, dict(row_length=256, block_cols=16, spectrum="rows")),
    (3, 3, 2500, 1200, False, True, dict(row_length=256, rows_per_program=2, spectrum="rows")),  # odd C: a lone kernel
    (5, 2, 2000, 2000, True, False, dict(row_length=256, groups_per_program=2, spectrum="rows")),  # K read once
    (2, 2, 4000, 3000, False, True, dict(row_length=512, block_rows=16, block_cols=32, spectrum="rows",
                                         twiddles="factored")),  # two spectrum blocks per row
    (3, 2, 2000, 1500, True, True, dict(row_length=256, spectrum="rows", joint_backward=True, products="embedded")),
    (1, 2, 2000, 1500, True, True, dict(row_length=256, block_cols=16, pairing="channels")),
    (1, 3, 2000, 1500, False, True, dict(row_length=256, pairing="channels", spectrum="rows")),  # odd C
    (3, 4, 2000, 2000, True, True, dict(row_length=256, rows_per_program=4, pairing="channels")),  # 3 entries a pair
    (2, 3, 2000, 1500, True, True, dict(row_length=256, pairing="channels", joint_backward=True)),
    (1, 2, 3000, 2500, False, True, dict(row_length=256, pairing="channels", spectrum="rows", joint_backward=True,
                                         twiddles="factored", products="embedded")),
    (1, 2, 4000, 3000, True, True, dict(row_length=512, block_rows=16, pairing="channels", spectrum="rows")),
    (2, 2, 5000, 5000, True, False, dict(row_length=256, block_cols=32, pairing="channels", spectrum="rows")),  # M 48
    (1, 2, 5000, 4000, False, True, dict(row_length=1024, block_cols=64, pairing="channels", spectrum="rows",
                                         joint_backward=True)),  # 12 x 1024
    (2, 2, 2000, 2000, False, True, dict(row_length=256, columns="fourstep")),  # M = 16: dense columns instead
    (2, 2, 40000, 25000, True, True, dict(row_length=256, columns="fourstep")),  # 256 x 256: 16 x 16 per column
    (1, 3, 33000, 32000, False, True, dict(row_length=256, columns="fourstep", block_cols=32, pairing="channels",
                                           spectrum="rows", joint_backward=True)),
])
def test_staged_row_spectrum_and_channel_pairs(b, c, length, lk, causal, skip, cfg, device):
    """StagedConfig.spectrum = "rows" (the kernel's spectrum made by the staged kernels, channel pairs in the row
    kernels' order) and pairing = "channels" (channels 2j and 2j + 1 as one complex sequence, their spectra split
    with the mirror rows): y, dx, dk and dD against float64 over odd channel counts, one and several batch entries
    per pair, one and two spectrum blocks per row, the joint backward, several groups per program, factored
    twiddles, embedded products, and M of 12, 16, 32 and 48; the four-step column transforms (columns="fourstep",
    M = 256: 65536-point transforms)."""
    if not _runs_here(device):
        pytest.skip("the staged kernels need CUDA, or TRITON_INTERPRET=1 on CPU")
    _check_config(b, c, length, lk, causal, skip, staged_fft.StagedConfig(**cfg), device,
                  tolerance("fft", torch.float32, device.type))


@pytest.mark.parametrize("c,q,columns", [(3, 256, "dense"), (2, 512, "dense"), (2, 256, "fourstep")])
def test_row_spectrum_layout(c, q, columns, device):
    """row_spectrum: K_c[ka + M*kb] / N at [c, :, ka, k1*N2 + k2] (kb = k1 + N1*k2) for K_c the DFT of channel c
    zero-padded, float32, against torch.fft in float64 channel by channel (a channel 1000 times smaller than
    its neighbour keeps its own accuracy); its shape checked where it is read."""
    if not _runs_here(device):
        pytest.skip("the staged kernels need CUDA, or TRITON_INTERPRET=1 on CPU")
    n, lk = (8192, 3000) if columns == "dense" else (65536, 30000)
    cfg = staged_fft.StagedConfig(row_length=q, block_rows=16, columns=columns)
    p = staged_fft._plan(n, torch.float32, cfg)
    k = torch.randn(c, lk, device=device)
    k[1] *= 1e-3
    ks = staged_fft.row_spectrum(k, n, cfg)
    assert ks.shape == (c, 2, p.m, q) and ks.dtype == torch.float32
    kp = torch.zeros(c, n, dtype=torch.float64, device=device)
    kp[:, :lk] = k.double()
    z = torch.fft.fft(kp) / n
    k1 = torch.arange(p.n1, device=device)[:, None]
    k2 = torch.arange(p.n2, device=device)[None, :]
    kb = (k1 + p.n1 * k2).reshape(-1)  # at column k1*N2 + k2
    f = torch.arange(p.m, device=device)[:, None] + p.m * kb[None, :]
    want = torch.view_as_real(z[:, f])  # (C, M, Q, 2)
    for ch in range(c):
        assert rel_error(ks[ch].permute(1, 2, 0), want[ch]) < 1e-5, ch
    with pytest.raises(ValueError, match="row_spectrum"):
        staged_fft.convolve(torch.randn(1, c, lk, device=device), fused_fft.kernel_spectrum(k, n), None, 0, 0, False,
                            n, cfg.__class__(row_length=q, spectrum="rows"))


@pytest.mark.parametrize("scaled", ["x", "k", "dy"])
@pytest.mark.parametrize("cfg", [dict(pairing="channels"), dict(pairing="channels", spectrum="rows",
                                                                joint_backward=True)])
def test_staged_channel_pairs_keep_each_channels_accuracy(scaled, cfg, device):
    """A channel 1000 times smaller than its pair partner (in x, k or dy) keeps its own float32 accuracy in y, dx
    and dk: channel pairs share a transform, so each member is scaled to its size first."""
    if not _runs_here(device):
        pytest.skip("the staged kernels need CUDA, or TRITON_INTERPRET=1 on CPU")
    config = staged_fft.StagedConfig(row_length=256, **cfg)
    x = torch.randn(1, 2, 3000, device=device)
    k = torch.randn(2, 2000, device=device) / 40
    dy = torch.randn(1, 2, 3000, device=device)
    {"x": x, "k": k, "dy": dy}[scaled][..., 1, :] *= 1e-3
    kf = fused_fft.call_kernel_spectrum(k, 3000, config)
    y = fused_fft.fused_fwd(x, k, None, True, kf, config)
    dx, dk, _ = fused_fft.fused_bwd(dy, x, k, None, True, kf, True, config)
    x64, k64 = (t.double().requires_grad_() for t in (x, k))
    ref = long_conv1d_reference(x64, k64)
    ref.backward(dy.double())
    tol = tolerance("fft", torch.float32, device.type)
    for ch in range(2):
        assert rel_error(y[:, ch], ref[:, ch]) < tol, ("y", ch)
        assert rel_error(dx[:, ch], x64.grad[:, ch]) < tol, ("dx", ch)
        assert rel_error(dk[ch], k64.grad[ch]) < tol, ("dk", ch)


def test_staged_channel_pairs_at_float32_extremes(device):
    """Channel pairs at the edges of float32's range: inputs near 1e-23 (the products of dy's and x's sizes
    underflow), a kernel below float32's normal range (1e-39), an all-zero kernel (its channel gets exactly
    D x) and an all-zero sequence (exactly 0 out): everything finite, the ordinary members accurate."""
    if not _runs_here(device):
        pytest.skip("the staged kernels need CUDA, or TRITON_INTERPRET=1 on CPU")
    cfg = staged_fft.StagedConfig(row_length=256, pairing="channels", joint_backward=True)
    tol = tolerance("fft", torch.float32, device.type)

    def run(x, k, D, dy):
        kf = fused_fft.call_kernel_spectrum(k, x.shape[-1], cfg)
        y = fused_fft.fused_fwd(x, k, D, True, kf, cfg)
        dx, dk, _ = fused_fft.fused_bwd(dy, x, k, D, True, kf, True, cfg)
        assert all(torch.isfinite(t).all() for t in (y, dx, dk))
        return y, dx, dk

    x, dy = torch.randn(1, 2, 3000, device=device) * 1e-23, torch.randn(1, 2, 3000, device=device) * 1e-23
    k = torch.randn(2, 2000, device=device) / 40
    y, dx, _ = run(x, k, None, dy)
    assert rel_error(y, long_conv1d_reference(x.double(), k.double())) < tol

    x, dy = torch.randn(2, 2, 3000, device=device), torch.randn(2, 2, 3000, device=device)
    k = torch.randn(2, 2000, device=device) / 40
    k[1] *= 1e-39 / k[1].abs().max()
    y, dx, _ = run(x, k, None, dy)
    assert rel_error(y[:, 0], long_conv1d_reference(x[:, :1].double(), k[:1].double())[:, 0]) < tol

    D = torch.randn(2, device=device)
    k[1] = 0
    x[1, 0] = 0
    y, dx, dk = run(x, k, D, dy)
    assert torch.equal(y[:, 1], D[1] * x[:, 1]) and torch.equal(y[1, 0], torch.zeros_like(y[1, 0]))
    ref = long_conv1d_reference(x[:1, :1].double(), k[:1].double(), D[:1].double())
    assert rel_error(y[:1, :1], ref) < tol


def test_staged_channel_pairs_strided(device):
    """Channel pairs on a channel-strided x and a strided D, causal=False, every gradient against float64."""
    if not _runs_here(device):
        pytest.skip("the staged kernels need CUDA, or TRITON_INTERPRET=1 on CPU")
    cfg = staged_fft.StagedConfig(row_length=256, pairing="channels", spectrum="rows")
    x = torch.randn(1, 6, 2100, device=device)[:, ::2]
    k = torch.randn(3, 1900, device=device) / 40
    D = torch.randn(3, 2, device=device)[:, 0]
    dy = torch.randn(1, 3, 2100, device=device)
    kf = fused_fft.call_kernel_spectrum(k, 2100, cfg)
    y = fused_fft.fused_fwd(x, k, D, False, kf, cfg)
    dx, dk, dD = fused_fft.fused_bwd(dy, x, k, D, False, kf, True, cfg)
    leaves = [t.double().requires_grad_() for t in (x, k, D)]
    ref = long_conv1d_reference(*leaves, causal=False)
    ref.backward(dy.double())
    tol = tolerance("fft", torch.float32, device.type)
    assert rel_error(y, ref) < tol
    for name, out, t in zip(("dx", "dk", "dD"), (dx, dk, dD), leaves):
        assert rel_error(out, t.grad) < tol, name


def test_staged_bfloat16_workspace(device):
    """A bfloat16 workspace (the default with bfloat16 products) on float32 data: within bfloat16's tolerance."""
    if not _runs_here(device):
        pytest.skip("the staged kernels need CUDA, or TRITON_INTERPRET=1 on CPU")
    _check_config(2, 2, 2000, 1500, True, True, staged_fft.StagedConfig(row_length=256, workspace="bfloat16"),
                  device, tolerance("fft", torch.bfloat16, device.type))


def test_transform_sizes():
    """N: the least multiple of 4096 >= L + Lk - 1 with a 7-smooth quotient, from 4096 to 2^21."""
    assert staged_fft.transform_size(6000, 6000) == 12288  # not 16384
    assert staged_fft.transform_size(16000, 16000) == 32768
    assert staged_fft.transform_size(100, 50) == 4096
    assert staged_fft.transform_size(1 << 18, 1 << 18) == 1 << 19
    assert staged_fft.transform_size(22 * 4096, 1) == 24 * 4096  # 22 = 2 x 11: the next 7-smooth multiple
    assert staged_fft.transform_size(10000, 8000) == 20480
    assert staged_fft.supports(12288) and not staged_fft.supports(12288 + 2048)


def test_row_length_and_limits():
    """Q = 1024 where M = N / Q is in [16, 512], else the nearest row length that splits N with M >= 16; N from
    4096 to 2^21; explicit row lengths down to M = 4."""
    assert staged_fft._row_length(32768) == 1024
    assert staged_fft._row_length(1 << 19) == 1024  # M = 512
    assert staged_fft._row_length(1 << 20) == 2048
    assert staged_fft._row_length(1 << 21) == 4096
    assert staged_fft._row_length(8192) == 512
    assert staged_fft._row_length(4096) == 256
    assert staged_fft._row_length(12288) == 512  # M = 24
    assert staged_fft._plan(12288, torch.float32, staged_fft.StagedConfig(row_length=1024)).m == 12
    assert staged_fft._row_length(3 << 19) == 4096  # M = 384 (2048-point rows: M = 768, too many)
    assert staged_fft.supports(4096) and staged_fft.supports(1 << 21)
    assert not staged_fft.supports(2048) and not staged_fft.supports(1 << 22)
    with pytest.raises(ValueError, match="row_length"):
        staged_fft._plan(32768, torch.float32, staged_fft.StagedConfig(row_length=128))
    with pytest.raises(ValueError, match="row_length"):
        staged_fft._plan(12288, torch.float32, staged_fft.StagedConfig(row_length=8192))
    with pytest.raises(ValueError, match="rows_per_program"):
        staged_fft._plan(12288, torch.float32, staged_fft.StagedConfig(row_length=1024, rows_per_program=8))  # M = 12
    with pytest.raises(ValueError, match="block_rows"):
        staged_fft._plan(32768, torch.float32, staged_fft.StagedConfig(block_rows=64))  # N1 = 32
    assert staged_fft._plan(1 << 21, torch.float32, staged_fft.StagedConfig()).bk == 32  # of N1 = 64
    with pytest.raises(ValueError, match="column_rows"):
        staged_fft._plan(32768, torch.float32, staged_fft.StagedConfig(column_rows=8))
    with pytest.raises(ValueError, match="block_cols"):
        staged_fft._plan(32768, torch.float32, staged_fft.StagedConfig(block_cols=24))
    with pytest.raises(ValueError, match="rows_per_program"):
        staged_fft._plan(32768, torch.float32, staged_fft.StagedConfig(rows_per_program=3))
    with pytest.raises(ValueError, match="workspace"):
        staged_fft._plan(32768, torch.float32, staged_fft.StagedConfig(workspace="half"))
    bf16_plan = staged_fft._plan(32768, torch.bfloat16, staged_fft.StagedConfig(precision="bf16"))
    assert bf16_plan.workspace == torch.bfloat16
    with pytest.raises(ValueError, match="groups_per_program"):
        staged_fft._plan(32768, torch.float32, staged_fft.StagedConfig(groups_per_program=0))
    with pytest.raises(ValueError, match="twiddles"):
        staged_fft._plan(32768, torch.float32, staged_fft.StagedConfig(twiddles="sincos"))
    with pytest.raises(ValueError, match="spectrum"):
        staged_fft._plan(32768, torch.float32, staged_fft.StagedConfig(spectrum="full"))
    with pytest.raises(ValueError, match="pairing"):
        staged_fft._plan(32768, torch.float32, staged_fft.StagedConfig(pairing="heads"))
    with pytest.raises(ValueError, match="columns"):
        staged_fft._plan(32768, torch.float32, staged_fft.StagedConfig(columns="fft"))
    four = staged_fft.StagedConfig(columns="fourstep")
    assert not staged_fft._plan(32768, torch.float32, four).fourstep  # M = 32: dense columns
    assert not staged_fft._plan(3 << 17, torch.float32, replace(four, row_length=1024)).fourstep  # M = 384 = 3 x 128
    assert staged_fft._plan(1 << 19, torch.float32, four).fourstep and staged_fft._plan(1 << 19, torch.float32,
                                                                                         four).bq == 16
    assert staged_fft._plan(32768, torch.float32, staged_fft.StagedConfig()).workspace == torch.float32


@gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("length,lk,causal", [(16000, 16000, True), (12000, 9000, False)])
def test_staged_long_conv1d_on_gpu(length, lk, causal, dtype):
    """Past MAX_N through lkconv.long_conv1d(algorithm="fused_fft"): 32768-point transforms at a length that is
    not a power of two, in every dtype's own products, with every gradient."""
    _check(3, 2, length, lk, causal, True, dtype, torch.device("cuda"))


@gpu
def test_staged_long_conv1d_longest_on_gpu():
    """A 2^19-point transform (M = 128, Q = 4096), one sequence (the pair's other half empty), bfloat16; the
    reference is torch.fft in float64 (a direct sum of 2^36 terms per channel would take minutes)."""
    length = 1 << 18
    x, g = (torch.randn(1, 2, length, device="cuda").bfloat16() for _ in range(2))
    k = (torch.randn(2, length, device="cuda") / 512).bfloat16()
    D = torch.randn(2, device="cuda").bfloat16()
    leaves = [t.clone().requires_grad_() for t in (x, k, D)]
    y = lkconv.long_conv1d(*leaves, algorithm="fused_fft")
    y.backward(g)
    leaves64 = [t.detach().double().requires_grad_() for t in leaves]
    ref = lkconv.long_conv1d(*leaves64, algorithm="fft")
    ref.backward(g.double())
    tol = tolerance("fft", torch.bfloat16, "cuda")
    assert rel_error(y, ref) < tol
    for name, t, t64 in zip(("dx", "dk", "dD"), leaves, leaves64):
        assert rel_error(t.grad, t64.grad) < tol, name


@gpu
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
@pytest.mark.parametrize("cfg", [dict(spectrum="rows"), dict(pairing="channels"),
                                 dict(pairing="channels", spectrum="rows", joint_backward=True),
                                 dict(columns="fourstep"),
                                 dict(columns="fourstep", pairing="channels", spectrum="rows", joint_backward=True)])
def test_staged_row_spectrum_and_channel_pairs_on_gpu(cfg, dtype):
    """The row-order kernel spectrum, channel pairs and four-step column transforms in the GPU's own products
    (bf16, or bf16x3 for float32) on a 2^19-point transform (M = 512 rows of 1024), one sequence of three channels
    (a lone last channel), every gradient, against torch.fft in float64."""
    length = 1 << 18
    config = staged_fft.StagedConfig(**cfg)
    x, dy = (torch.randn(1, 3, length, device="cuda").to(dtype) for _ in range(2))
    k = (torch.randn(3, length, device="cuda") / 512).to(dtype)
    D = torch.randn(3, device="cuda").to(dtype)
    kf = fused_fft.call_kernel_spectrum(k, length, config)
    y = fused_fft.fused_fwd(x, k, D, True, kf, config)
    dx, dk, dD = fused_fft.fused_bwd(dy, x, k, D, True, kf, True, config)
    leaves = [t.detach().double().requires_grad_() for t in (x, k, D)]
    ref = lkconv.long_conv1d(*leaves, algorithm="fft")
    ref.backward(dy.double())
    tol = tolerance("fft", dtype, "cuda")
    assert rel_error(y, ref) < tol
    for name, out, t in zip(("dx", "dk", "dD"), (dx, dk, dD), leaves):
        assert rel_error(out, t.grad) < tol, name


@gpu
def test_staged_rows_past_65535_sequences():
    """70000 channels of one sequence pair each: more row-kernel sequences than a grid's second axis takes (65535);
    the row kernels' one-axis grid runs them all (first and last channels against float64)."""
    cfg = staged_fft.StagedConfig(row_length=256)
    x = torch.randn(2, 70000, 2049, device="cuda", dtype=torch.bfloat16)
    k = (torch.randn(70000, 2048, device="cuda") / 45).bfloat16()
    y = fused_fft.fused_fwd(x, k, None, True, fused_fft.call_kernel_spectrum(k, 2049, cfg), cfg)
    for part in (slice(0, 64), slice(69936, 70000)):
        ref = long_conv1d_reference(x[:, part].double(), k[part].double())
        assert rel_error(y[:, part], ref) < tolerance("fft", torch.bfloat16, "cuda")


@gpu
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_staged_auto_choice_is_correct(dtype, tmp_path, monkeypatch):
    """"auto" on a problem past MAX_N times both algorithms (float32 too, unlike the fused kernels' sizes) and
    either answer is right."""
    from lkconv.ops import autotune_cache
    from lkconv.ops.conv1d.long import choice_key

    monkeypatch.setenv("LKCONV_CACHE_DIR", str(tmp_path))
    autotune_cache.clear_memory()
    x = torch.randn(2, 4, 20000, device="cuda").to(dtype)
    k = (torch.randn(4, 20000, device="cuda") / 150).to(dtype)
    assert fused_fft.unsupported_reason(x, k) is None
    y = lkconv.long_conv1d(x, k)
    ref = long_conv1d_reference(x.double(), k.double())
    assert rel_error(y, ref) < tolerance("fft", dtype, "cuda")
    assert set(autotune_cache.lookup(choice_key(x, k, None, True, False))["times_ms"]) == {"fft", "fused_fft"}


def test_staged_algorithm_and_auto_candidates(device):
    """algorithm="staged_fft" through lkconv.long_conv1d (a 4096-point transform, every gradient), its error below
    4096 points, and the candidates "auto" would measure by size and dtype."""
    if not _runs_here(device):
        pytest.skip("the staged kernels need CUDA, or TRITON_INTERPRET=1 on CPU")
    from lkconv.ops.conv1d.long import _candidates

    x = torch.randn(2, 2, 2000, device=device, requires_grad=True)
    k = (torch.randn(2, 1500, device=device) / 40).requires_grad_()
    y = lkconv.long_conv1d(x, k, algorithm="staged_fft")
    g = torch.randn_like(y)
    y.backward(g)
    x64, k64 = (t.detach().double().requires_grad_() for t in (x, k))
    ref = long_conv1d_reference(x64, k64)
    ref.backward(g.double())
    tol = tolerance("fft", torch.float32, device.type)
    for out, r in ((y, ref), (x.grad, x64.grad), (k.grad, k64.grad)):
        assert rel_error(out, r) < tol
    with pytest.raises(ValueError, match="staged_fft"):  # a 2048-point transform
        lkconv.long_conv1d(x[..., :1000], k[:, :1000], algorithm="staged_fft")
    bf = x.detach().bfloat16()
    assert _candidates(bf, k, True) == ["fft", "fused_fft", "staged_fft"]
    assert _candidates(bf[..., :1000], k[:, :1000], True) == ["fft", "fused_fft"]
    if not torch.backends.cuda.matmul.allow_tf32:
        assert _candidates(x, k, True) == ["fft", "staged_fft"]  # float32: not the fused kernels within MAX_N
        long_x = torch.empty(1, 2, 20000, device=device)
        assert _candidates(long_x, torch.empty(2, 20000, device=device), True) == ["fft", "fused_fft"]


def test_staged_strided_input_and_skip(device):
    """x a channel-strided view and D a strided view through algorithm="staged_fft": every gradient against
    float64."""
    if not _runs_here(device):
        pytest.skip("the staged kernels need CUDA, or TRITON_INTERPRET=1 on CPU")
    x = torch.randn(3, 6, 2100, device=device)[:, ::2].requires_grad_()
    k = (torch.randn(3, 1900, device=device) / 40).requires_grad_()
    D = torch.randn(3, 2, device=device)[:, 0].requires_grad_()
    assert x.stride(1) == 2 * 2100 and D.stride(0) == 2
    y = lkconv.long_conv1d(x, k, D, causal=False, algorithm="staged_fft")
    g = torch.randn_like(y)
    y.backward(g)
    leaves64 = [t.detach().double().requires_grad_() for t in (x, k, D)]
    ref = long_conv1d_reference(*leaves64, causal=False)
    ref.backward(g.double())
    tol = tolerance("fft", torch.float32, device.type)
    assert rel_error(y, ref) < tol
    for t, t64 in zip((x, k, D), leaves64):
        assert rel_error(t.grad, t64.grad) < tol
