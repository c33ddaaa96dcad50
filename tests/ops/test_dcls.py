"""DCLS kernel construction: Triton kernels (interpreter on CPU) and the public op against float64 references."""
import pytest
import torch

import lkconv.ops.dcls as dcls_mod
from lkconv._triton import can_launch
from lkconv.ops.dcls import VERSIONS, dcls_construct_kernel2d, triton_construct
from lkconv.ops.dcls.reference import dcls_construct_kernel2d_bwd_reference, dcls_construct_kernel2d_reference
from lkconv.testing import poison_outputs, rel_error

# (out, in // groups, kernel_count, (D0, D1)): square/non-square, even sizes, a single element
SHAPES = [
    (3, 1, 4, (7, 5)),
    (2, 2, 3, (6, 6)),
    (1, 1, 1, (3, 4)),
    (2, 1, 5, (9, 9)),
]

needs_triton = pytest.mark.skipif(
    not can_launch(torch.empty(0, device="cuda" if torch.cuda.is_available() else "cpu")),
    reason="Triton kernels cannot run here",
)


def _params(shape, version, dtype=torch.float64, spread=None):
    """Random weight/P/SIG; positions spread past the window edge so border clipping is exercised."""
    o, i, k, dks = shape
    spread = max(dks) / 2.5 if spread is None else spread
    weight = torch.randn(o, i, k, dtype=dtype)
    P = torch.randn(2, o, i, k, dtype=dtype) * spread
    SIG = torch.randn(2, o, i, k, dtype=dtype) * 0.7 if version in ("gauss", "max") else None
    return weight, P, SIG


def _ref(weight, P, SIG, dks, version, grad, dtype=torch.float64):
    """The reference kernel and its autograd gradients, computed in dtype (float64: the ground truth)."""
    args = [t.detach().to(dtype).requires_grad_() for t in (weight, P) + ((SIG,) if SIG is not None else ())]
    kern = dcls_construct_kernel2d_reference(args[0], args[1], args[2] if SIG is not None else None, dks, version)
    grads = torch.autograd.grad(kern, args, grad.to(dtype))
    return kern.detach(), grads


def _assert_float32_grads(grads, grads_ref, grads_ref32, tol):
    """Each float32 gradient within tol of the float64 one, relative to its size, plus ten times the error of
    the plain-PyTorch reference run in float32 on the same inputs: sums that cancel (one element's dweight of
    12 terms ~1 summing to ~0.003; v1's dP, nearly zero where normalization cancels the shift) are no more
    accurate than float32 itself allows."""
    for name, a, r, r32 in zip(("dweight", "dP", "dSIG"), grads, grads_ref, grads_ref32):
        err = (a.detach().double().cpu() - r).norm()
        floor = (r32.double() - r).norm()
        assert err <= tol * r.norm() + 10 * floor, f"{name}: {err:.2e} vs {tol * r.norm():.2e} + 10 x {floor:.2e}"


@pytest.mark.parametrize("version", VERSIONS)
def test_reference_bwd_matches_autograd(version):
    shape = (3, 2, 5, (7, 4))
    weight, P, SIG = _params(shape, version)
    grad = torch.randn(3, 2, 7, 4, dtype=torch.float64)
    _, grads = _ref(weight, P, SIG, shape[3], version, grad)
    ours = dcls_construct_kernel2d_bwd_reference(grad, weight, P, SIG, shape[3], version)
    for name, a, b in zip(("dweight", "dP", "dSIG"), ours, grads):
        assert rel_error(a, b) < 1e-12, name
    assert (ours[2] is None) == (SIG is None)


def test_reference_normalized_versions_sum_to_weight():
    """Inside the window, a normalized kernel's taps of one element sum to its weight (v1, max, gauss)."""
    for version in ("v1", "max", "gauss"):
        weight, P, SIG = _params((2, 1, 1, (15, 15)), version, spread=0.5)
        if SIG is not None:
            SIG = SIG.abs() * 0.3
        kern = dcls_construct_kernel2d_reference(weight, P, SIG, (15, 15), version)
        assert torch.allclose(kern.sum((2, 3)), weight[..., 0], rtol=1e-5), version


@needs_triton
@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("shape", SHAPES)
def test_triton_fwd_bwd_float32(version, shape, device):
    # a lone element barely inside the window has dP ~ 1e-7 (pure rounding): keep lone elements inside; the
    # "max" triangle of an element far outside leaves a near-zero normalizer, which float32 cannot resolve
    inside = shape[2] == 1 or version == "max"
    weight, P, SIG = _params(shape, version, torch.float32, spread=0.4 if inside else None)
    o, i, _, dks = shape
    grad = torch.randn(o, i, *dks)
    kern_ref, grads_ref = _ref(weight, P, SIG, dks, version, grad)
    dev = [t.to(device) if t is not None else None for t in (weight, P, SIG, grad)]
    with poison_outputs():
        kern = triton_construct.construct2d_fwd(dev[0], dev[1], dev[2], dks, version)
        grads = triton_construct.construct2d_bwd(dev[3], dev[0], dev[1], dev[2], dks, version)
    assert kern.shape == (o, i, *dks) and kern.dtype == torch.float32
    assert rel_error(kern, kern_ref) < 1e-5, "kernel"
    _assert_float32_grads(grads, grads_ref, _ref(weight, P, SIG, dks, version, grad, torch.float32)[1], 3e-5)
    if SIG is None:
        assert grads[2] is None


@needs_triton
@pytest.mark.parametrize("version", VERSIONS)
def test_triton_fwd_bwd_float64(version, device):
    shape = (2, 2, 4, (5, 8))
    weight, P, SIG = _params(shape, version)
    grad = torch.randn(2, 2, 5, 8, dtype=torch.float64)
    kern_ref, grads_ref = _ref(weight, P, SIG, shape[3], version, grad)
    dev = [t.to(device) if t is not None else None for t in (weight, P, SIG, grad)]
    with poison_outputs():
        kern = triton_construct.construct2d_fwd(dev[0], dev[1], dev[2], shape[3], version)
        grads = triton_construct.construct2d_bwd(dev[3], dev[0], dev[1], dev[2], shape[3], version)
    assert rel_error(kern, kern_ref) < 1e-12, "kernel"
    for name, a, b in zip(("dweight", "dP", "dSIG"), grads, grads_ref):
        assert rel_error(a, b) < 1e-11, name


@needs_triton
def test_triton_bfloat16_parameters(device):
    weight, P, SIG = _params((2, 1, 3, (7, 7)), "gauss", torch.bfloat16)
    kern_ref, _ = _ref(weight, P, SIG, (7, 7), "gauss", torch.zeros(2, 1, 7, 7))
    with poison_outputs():
        kern = triton_construct.construct2d_fwd(weight.to(device), P.to(device), SIG.to(device), (7, 7), "gauss")
    assert kern.dtype == torch.bfloat16
    assert rel_error(kern, kern_ref) < 1.2e-2


@pytest.mark.parametrize("version", ["v1", "gauss"])
def test_public_op_autograd(version, device):
    shape = (3, 1, 4, (6, 5))
    weight, P, SIG = _params(shape, version, torch.float32)
    grad = torch.randn(3, 1, 6, 5)
    kern_ref, grads_ref = _ref(weight, P, SIG, shape[3], version, grad)
    leaves = [t.to(device).requires_grad_() if t is not None else None for t in (weight, P, SIG)]
    with poison_outputs():
        kern = dcls_construct_kernel2d(*leaves, shape[3], version)
        kern.backward(grad.to(device))
    assert rel_error(kern, kern_ref) < 1e-5, "kernel"
    grads_ref32 = _ref(weight, P, SIG, shape[3], version, grad, torch.float32)[1]
    _assert_float32_grads([t.grad for t in leaves if t is not None], grads_ref, grads_ref32, 3e-5)


def test_public_op_frozen_positions(device):
    """Only weight requires grad: P gets none, weight's gradient is still right."""
    weight, P, SIG = _params((2, 1, 3, (5, 5)), "gauss", torch.float32)
    grad = torch.randn(2, 1, 5, 5)
    _, grads_ref = _ref(weight, P, SIG, (5, 5), "gauss", grad)
    w = weight.to(device).requires_grad_()
    p = P.to(device)
    dcls_construct_kernel2d(w, p, SIG.to(device), 5, "gauss").backward(grad.to(device))
    assert p.grad is None
    _assert_float32_grads([w.grad], grads_ref[:1], _ref(weight, P, SIG, (5, 5), "gauss", grad, torch.float32)[1], 1e-5)


@pytest.mark.parametrize("version", ["v0", "max"])
def test_cpu_fallback_path(version, monkeypatch):
    monkeypatch.setattr(dcls_mod, "can_launch", lambda t: False)
    shape = (2, 3, 4, (7, 6))
    weight, P, SIG = _params(shape, version)
    grad = torch.randn(2, 3, 7, 6, dtype=torch.float64)
    kern_ref, grads_ref = _ref(weight, P, SIG, shape[3], version, grad)
    leaves = [t.clone().requires_grad_() if t is not None else None for t in (weight, P, SIG)]
    kern = dcls_construct_kernel2d(*leaves, shape[3], version)
    kern.backward(grad)
    assert rel_error(kern, kern_ref) < 1e-12
    for leaf, ref in zip([t for t in leaves if t is not None], grads_ref):
        assert rel_error(leaf.grad, ref) < 1e-12


def test_custom_op_registration():
    weight, P, SIG = _params((2, 1, 2, (3, 3)), "gauss")
    torch.library.opcheck(
        dcls_mod.dcls_construct2d_fwd,
        (weight.requires_grad_(), P.requires_grad_(), SIG.requires_grad_(), [3, 3], "gauss"),
        test_utils=("test_schema", "test_autograd_registration", "test_faketensor"),
    )


@pytest.mark.parametrize(
    "version, w_shape, p_shape, sig_shape, dks, match",
    [
        ("v2", (2, 1, 3), (2, 2, 1, 3), None, 5, "version"),
        ("gauss", (2, 1, 3), (2, 2, 1, 3), None, 5, "needs SIG"),
        ("v1", (2, 1, 3), (2, 2, 1, 3), (2, 2, 1, 3), 5, "takes no SIG"),
        ("v1", (2, 1, 3), (2, 2, 1, 4), None, 5, "P must have shape"),
        ("v1", (2, 3), (2, 2, 3), None, 5, "weight must be 3-D"),
        ("v1", (2, 1, 3), (2, 2, 1, 3), None, 0, "dilated_kernel_size"),
        ("v1", (2, 1, 3), (2, 2, 1, 3), None, (3, 4, 5), "dilated_kernel_size"),
    ],
)
def test_bad_arguments(version, w_shape, p_shape, sig_shape, dks, match):
    sig = torch.randn(sig_shape) if sig_shape is not None else None
    with pytest.raises(ValueError, match=match):
        dcls_construct_kernel2d(torch.randn(w_shape), torch.randn(p_shape), sig, dks, version)
