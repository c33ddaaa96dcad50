"""long_conv1d's fused Triton kernels (four-step FFT on tensor cores) against the float64 direct sum, every
gradient, and the algorithm choice."""
import pytest
import torch

import lkconv
from lkconv.ops.conv1d import fused_fft, long_conv1d_reference
from lkconv.testing import poison_outputs, rel_error, tolerance

from ..conftest import gpu


def _runs_here(device):
    return fused_fft.unsupported_reason(torch.empty(1, 1, 8, device=device), torch.empty(1, 1, device=device)) is None


def _check(b, c, length, lk, causal, skip, dtype, device):
    x = torch.randn(b, c, length, device=device).to(dtype)
    k = (torch.randn(c, lk, device=device) / lk ** 0.5).to(dtype)
    D = torch.randn(c, device=device).to(dtype) if skip else None
    g = torch.randn(b, c, length, device=device).to(dtype)
    leaves = [t.clone().requires_grad_() for t in (x, k, D) if t is not None]
    leaves64 = [t.detach().double().requires_grad_() for t in leaves]
    with poison_outputs():
        y = lkconv.long_conv1d(leaves[0], leaves[1], leaves[2] if skip else None, causal, algorithm="fused_fft")
        y.backward(g)
    ref = long_conv1d_reference(leaves64[0], leaves64[1], leaves64[2] if skip else None, causal)
    ref.backward(g.double())
    tol = tolerance("fft", dtype, device.type)
    assert y.dtype == dtype and y.shape == x.shape and y.is_contiguous()
    assert rel_error(y, ref) < tol
    for name, t, t64 in zip(("dx", "dk", "dD"), leaves, leaves64):
        assert t.grad.dtype == dtype
        assert rel_error(t.grad, t64.grad) < tol, name


@pytest.mark.parametrize("length,lk", [(1, 1), (100, 37), (128, 128), (130, 41), (300, 300), (700, 5), (1000, 999)])
@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("skip", [True, False])
def test_fused_long_conv1d_matches_direct_sum(length, lk, causal, skip, device):
    """Transforms of 256..2048 points (16x16 .. 64x32 tiles), kernels of any length up to L, both conventions."""
    if not _runs_here(device):
        pytest.skip("the fused kernels need CUDA, or TRITON_INTERPRET=1 on CPU")
    _check(2, 3, length, lk, causal, skip, torch.float32, device)


@pytest.mark.parametrize("length,lk,causal", [(4096, 4096, True), (3000, 3000, False), (2500, 1000, True),
                                              (8000, 8000, False), (6000, 6000, True), (16000, 300, False)])
def test_fused_long_conv1d_largest_transforms(length, lk, causal, device):
    """8192 and MAX_N = 16384 points ((128, 64), (256, 64) factors), at lengths that are and are not powers of
    two; a centred 16000 spans 256 rows of 64 (pairs shrink to one)."""
    if not _runs_here(device):
        pytest.skip("the fused kernels need CUDA, or TRITON_INTERPRET=1 on CPU")
    _check(1, 2, length, lk, causal, True, torch.float32, device)


@pytest.mark.parametrize("b,c", [(1, 1), (5, 5), (3, 20)])
def test_fused_long_conv1d_batch_chunks(b, c, device):
    """The backward's batch chunks: one sequence per program, several, and a last chunk past the batch."""
    if not _runs_here(device):
        pytest.skip("the fused kernels need CUDA, or TRITON_INTERPRET=1 on CPU")
    _check(b, c, 200, 60, True, True, torch.float32, device)


@pytest.mark.parametrize("length", [333, 4096])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_fused_long_conv1d_low_precision(dtype, length, device):
    """16-bit inputs through their default products (bfloat16 for bf16, split bfloat16 for fp16; exact float32
    under the interpreter), up to 8192-point transforms."""
    if not _runs_here(device):
        pytest.skip("the fused kernels need CUDA, or TRITON_INTERPRET=1 on CPU")
    _check(2, 3, length, length, True, True, dtype, device)


def test_fused_long_conv1d_strided_input(device):
    """x whose time axis is not unit-stride is made contiguous first."""
    if not _runs_here(device):
        pytest.skip("the fused kernels need CUDA, or TRITON_INTERPRET=1 on CPU")
    x = torch.randn(2, 90, 3, device=device).transpose(1, 2)
    k = torch.randn(3, 20, device=device)
    y = lkconv.long_conv1d(x, k, algorithm="fused_fft")
    assert rel_error(y, long_conv1d_reference(x.double(), k.double())) < 1e-5


def test_transform_geometry():
    assert fused_fft.transform_size(100, 37) == 256  # at least MIN_N
    assert fused_fft.transform_size(4096, 4096) == 8192
    assert fused_fft.transform_size(3000, 3000) == 8192  # any L: the next power of two >= L + Lk - 1
    assert fused_fft._factors(8192) == (128, 64)
    assert fused_fft._factors(32768) == (512, 64)  # N2 stays at MAX_N2
    assert fused_fft._factors(2048) == (64, 32)
    assert fused_fft._factors(256) == (16, 16)


def test_dft_constants_exact_and_kept_per_size_and_device():
    """F_N1, F_N2 and the twiddles equal exp(-2 pi i a b / m) (float64 reference) and are computed once per
    (N1, N2, device, dtype): a second request returns the same tensors."""
    import math

    f1, f2, tw, g2 = fused_fft._dft_constants(32, 16, torch.device("cpu"))
    for planes, rows, cols, m in ((f1, 32, 32, 32), (f2, 16, 16, 16), (tw, 32, 16, 512)):
        a = torch.arange(rows, dtype=torch.float64)[:, None]
        b = torch.arange(cols, dtype=torch.float64)[None, :]
        ref = torch.polar(torch.ones(rows, cols, dtype=torch.float64), -2 * math.pi * a * b / m)
        assert planes.shape == (2, rows, cols) and planes.dtype == torch.float32
        assert (torch.complex(planes[0].double(), planes[1].double()) - ref).abs().max() < 1e-6
    # the embedded F_N2: interleaved (real, imaginary) rows times it = complex rows times F_N2
    v = torch.randn(3, 16, dtype=torch.complex128)
    assert g2.shape == (32, 32) and g2.dtype == torch.float32
    out = torch.view_as_real(v).reshape(3, 32) @ g2.double()
    ref = v @ torch.complex(f2[0].double(), f2[1].double())
    assert (torch.view_as_complex(out.reshape(3, 16, 2).contiguous()) - ref).abs().max() < 1e-5
    again = fused_fft._dft_constants(32, 16, torch.device("cpu"))
    assert all(u is v for u, v in zip(again, (f1, f2, tw, g2)))
    assert fused_fft._dft_constants(16, 16, torch.device("cpu"))[0] is not f1
    # for bfloat16 products: the same matrices rounded to bfloat16, the twiddles still float32
    low = fused_fft._dft_constants(32, 16, torch.device("cpu"), torch.bfloat16)
    for u, v in zip(low, (f1, f2, tw, g2)):
        assert u.dtype == (torch.float32 if v is tw else torch.bfloat16)
        assert torch.equal(u, v.to(u.dtype))


@gpu
def test_dft_constants_made_inside_a_graph_capture_are_not_kept():
    """Constants first computed inside a CUDA-graph capture hold values only once the graph replays: they are
    not kept, and the next eager request computes them."""
    device = torch.device("cuda", torch.cuda.current_device())
    fused_fft._DFT_CONSTANTS.pop(("four-step", 64, 16, device, torch.float32), None)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        captured = fused_fft._dft_constants(64, 16, device)
    assert ("four-step", 64, 16, device, torch.float32) not in fused_fft._DFT_CONSTANTS
    eager = fused_fft._dft_constants(64, 16, device)
    graph.replay()
    torch.cuda.synchronize()
    assert fused_fft._DFT_CONSTANTS[("four-step", 64, 16, device, torch.float32)] is eager
    for u, v in zip(captured, eager):
        torch.testing.assert_close(u, v, rtol=0, atol=0)


def test_algorithm_errors_and_choice(device):
    x = torch.randn(1, 2, 8, device=device)
    with pytest.raises(ValueError, match="algorithm must be one of"):
        lkconv.long_conv1d(x, torch.randn(2, 3, device=device), algorithm="direct")
    with pytest.raises(ValueError, match="block_rows"):
        fused_fft.fused_fwd(x, torch.randn(2, 3, device=device), None, True,
                            fused_fft.kernel_spectrum(torch.randn(2, 3, device=device), 256),
                            fused_fft.FusedConfig(block_rows=24))
    with pytest.raises(ValueError, match="products must be one of"):
        fused_fft.fused_fwd(x, torch.randn(2, 3, device=device), None, True,
                            fused_fft.kernel_spectrum(torch.randn(2, 3, device=device), 256),
                            fused_fft.FusedConfig(products="gauss"))
    k2 = torch.randn(2, 3, device=device)
    with pytest.raises(ValueError, match="kernel_spectrum"):  # a spectrum of the wrong size
        fused_fft.fused_fwd(x, k2, None, True, fused_fft.kernel_spectrum(k2, 512))
    long_x = torch.randn(1, 1, 1_100_000, device=device)
    with pytest.raises(ValueError, match="staged"):  # a 4194304-point transform: past the staged kernels too
        lkconv.long_conv1d(long_x, torch.randn(1, 1_100_000, device=device), algorithm="fused_fft")
    if device.type == "cpu":
        from lkconv.ops.conv1d.long import choose

        assert choose(x, torch.randn(2, 3), None, True, "auto") == "fft"  # CPU: torch.fft, never the interpreter
    with pytest.raises(ValueError, match="fused_fft"):
        lkconv.long_conv1d(x.double(), torch.randn(2, 3, device=device, dtype=torch.float64), algorithm="fused_fft")
    with pytest.raises(ValueError, match="empty"):
        lkconv.long_conv1d(x[:0], torch.randn(2, 3, device=device), algorithm="fused_fft")
    assert lkconv.long_conv1d(x[:0], torch.randn(2, 3, device=device)).shape == (0, 2, 8)


def test_fused_long_conv1d_mixed_dtypes_and_strided_skip(device):
    """k and D in another dtype than x (computed in float32, gradients in their own dtypes); D a strided view;
    k without a gradient (no dk kernel; dD by a plain reduction)."""
    if not _runs_here(device):
        pytest.skip("the fused kernels need CUDA, or TRITON_INTERPRET=1 on CPU")
    x = torch.randn(2, 3, 150, device=device).to(torch.bfloat16).requires_grad_()
    k = (torch.randn(3, 40, device=device) / 7).requires_grad_()
    D = torch.randn(3, 2, device=device)[:, 1].detach().requires_grad_()
    g = torch.randn(2, 3, 150, device=device).to(torch.bfloat16)
    y = lkconv.long_conv1d(x, k, D, causal=False, algorithm="fused_fft")
    y.backward(g)
    x64, k64, D64 = (t.detach().double().requires_grad_() for t in (x, k, D))
    ref = long_conv1d_reference(x64, k64, D64, causal=False)
    ref.backward(g.double())
    tol = tolerance("fft", torch.bfloat16, device.type)
    assert y.dtype == torch.bfloat16 and k.grad.dtype == torch.float32 and D.grad.dtype == torch.float32
    for out, r in ((y, ref), (x.grad, x64.grad), (k.grad, k64.grad), (D.grad, D64.grad)):
        assert rel_error(out, r) < tol
    x.grad = None
    lkconv.long_conv1d(x, k.detach(), D, causal=False, algorithm="fused_fft").backward(g)
    assert rel_error(x.grad, x64.grad) < tol


def _check_config(b, c, length, lk, causal, skip, cfg, device, tol=1e-5):
    """fused_fwd and fused_bwd with ``cfg``: y, dx, dk and dD (None without a skip term) against float64."""
    x = torch.randn(b, c, length, device=device)
    k = torch.randn(c, lk, device=device) / lk ** 0.5
    D = torch.randn(c, device=device) if skip else None
    dy = torch.randn(b, c, length, device=device)
    kf = fused_fft.call_kernel_spectrum(k, length, cfg)
    with poison_outputs():
        y = fused_fft.fused_fwd(x, k, D, causal, kf, cfg)
        dx, dk, dD = fused_fft.fused_bwd(dy, x, k, D, causal, kf, True, cfg)
    leaves = [t.double().requires_grad_() for t in (x, k, D) if t is not None]
    ref = long_conv1d_reference(leaves[0], leaves[1], leaves[2] if skip else None, causal)
    ref.backward(dy.double())
    assert rel_error(y, ref) < tol
    assert (dD is None) == (not skip)
    for name, out, t in zip(("dx", "dk", "dD"), (dx, dk, dD), leaves):
        assert rel_error(out, t.grad) < tol, name


@pytest.mark.parametrize("products", fused_fft.PRODUCTS)
@pytest.mark.parametrize("per", [1, 2, 3])
@pytest.mark.parametrize("block_rows,pairs", [(16, 1), (32, 1), (16, 2), (16, 4)])
def test_fused_kernel_configs(per, block_rows, pairs, products, device):
    """Groups per program (a chunk past the batch's end included), spectrum blocks and sequence pairs per group
    (an odd batch leaves a pair half empty), set explicitly as the GPU's defaults give other values; both ways
    of making complex products."""
    if not _runs_here(device):
        pytest.skip("the fused kernels need CUDA, or TRITON_INTERPRET=1 on CPU")
    cfg = fused_fft.FusedConfig(block_rows=block_rows, pairs=pairs, groups_per_program=per, products=products)
    _check_config(5, 2, 700, 300, True, True, cfg, device)


@pytest.mark.parametrize("length,lk,causal,block_rows", [(1000, 999, False, 16), (4096, 4096, True, 32),
                                                         (16000, 300, False, 64)])
def test_embedded_products(length, lk, causal, block_rows, device):
    """Embedded complex products (FusedConfig.products="embedded") on (64, 32), (128, 64) and (256, 64) factors,
    several spectrum blocks, input rows held or read per block: y, dx, dk and dD against float64."""
    if not _runs_here(device):
        pytest.skip("the fused kernels need CUDA, or TRITON_INTERPRET=1 on CPU")
    _check_config(3, 2, length, lk, causal, True, fused_fft.FusedConfig(block_rows=block_rows, products="embedded"),
                  device)


@pytest.mark.parametrize("products", fused_fft.PRODUCTS)
@pytest.mark.parametrize("per,pairs,causal,skip,length,lk,block_rows", [
    (1, 1, True, True, 700, 300, 16), (2, 1, False, True, 1000, 999, 16), (3, 1, True, False, 700, 300, 32),
    (0, 2, True, False, 1000, 999, 16), (2, 2, False, True, 16000, 300, 64)])
def test_joint_backward(per, pairs, causal, skip, length, lk, block_rows, products, device):
    """The input gradient's kernel making the weight gradient's sums too (FusedConfig.joint_backward): dx, dk and
    dD against float64, with one spectrum block or several ((32, 32) and (64, 32) factors), input rows held or
    read per block (16000 samples), over one group per program, several, and a chunk past the batch's end."""
    if not _runs_here(device):
        pytest.skip("the fused kernels need CUDA, or TRITON_INTERPRET=1 on CPU")
    cfg = fused_fft.FusedConfig(block_rows=block_rows, pairs=pairs, groups_per_program=per, products=products,
                                joint_backward=True)
    _check_config(5, 2, length, lk, causal, skip, cfg, device)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="auto measures on CUDA only (CPU takes torch.fft)")
def test_auto_times_both_algorithms_once(tmp_path, monkeypatch):
    """"auto" on a GPU: both algorithms timed once (forward+backward when a gradient is wanted), the winner
    cached, the caller's random stream untouched, and the result correct either way."""
    from lkconv.ops import autotune_cache
    from lkconv.ops.conv1d.long import choice_key

    monkeypatch.setenv("LKCONV_CACHE_DIR", str(tmp_path))
    autotune_cache.clear_memory()
    x = torch.randn(4, 8, 1000, device="cuda").bfloat16().requires_grad_()
    k = torch.randn(8, 1000, device="cuda").bfloat16().requires_grad_()
    state = torch.cuda.get_rng_state()
    y = lkconv.long_conv1d(x, k)
    assert torch.equal(state, torch.cuda.get_rng_state())
    entry = autotune_cache.lookup(choice_key(x, k, None, True, True))
    assert entry["algorithm"] in ("fft", "fused_fft") and set(entry["times_ms"]) == {"fft", "fused_fft"}
    ref = long_conv1d_reference(x.detach().double(), k.detach().double())
    assert rel_error(y, ref) < tolerance("fft", torch.bfloat16, "cuda")
    x32, k32 = x.detach().float(), k.detach().float()  # float32 without tf32: torch.fft, nothing timed
    lkconv.long_conv1d(x32, k32)
    assert autotune_cache.lookup(choice_key(x32, k32, None, True, False)) is None
