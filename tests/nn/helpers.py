"""Shared checks for the block tests: compare a block against its plain-PyTorch rendering of the official
code (outputs, input and parameter gradients, BatchNorm buffers), randomise parameters and BatchNorm
statistics, and the layout / autocast / drop-path checks every block file repeats.

Only comparing and setting up lives here; each test file keeps its own reference rendering.
"""
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from lkconv.nn import DepthwiseConv2d
from lkconv.testing import rel_error


# ---------------------------------------------------------------- parameters and state


@torch.no_grad()
def randomize(module, bn_mean_std=0.3, shift_weight_of=(_BatchNorm,)):
    """Random non-trivial parameters (N(0, 0.5^2)) and BatchNorm statistics (mean N(0, bn_mean_std^2), var
    U(0.5, 1.5)); the weights of ``shift_weight_of`` modules (norms) are shifted by +1. Returns module."""
    for p in module.parameters():
        p.copy_(torch.randn_like(p) * 0.5)
    for m in module.modules():
        if isinstance(m, shift_weight_of):
            m.weight.add_(1.0)
        if isinstance(m, _BatchNorm):
            m.running_mean.copy_(torch.randn_like(m.running_mean) * bn_mean_std)
            m.running_var.copy_(torch.rand_like(m.running_var) + 0.5)
    return module


@torch.no_grad()
def randomize_bn(module):
    """Random non-trivial BatchNorm2d statistics and affine parameters only (other parameters keep their
    initialisation). Returns module."""
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.normal_(1.0, 0.3)
            m.bias.normal_(0, 0.3)
    return module


def load_same(src, dst):
    """Load src's state_dict into dst (strict), after checking both have the same keys. Returns dst."""
    assert set(src.state_dict()) == set(dst.state_dict())
    dst.load_state_dict(src.state_dict(), strict=True)
    return dst


def trainable(module):
    """{name: parameter} of the parameters that require grad."""
    return {n: p for n, p in module.named_parameters() if p.requires_grad}


# ---------------------------------------------------------------- comparison against a reference


def compare_to_reference(block, ref, inputs, tol=1e-5, *, load=True, seed=None, params=None,
                         same_param_names=False, unused_params=False, grad_atol=None, check_buffers=True):
    """Run ``block`` and ``ref`` on copies of ``inputs`` (a tensor or a list), backpropagate one random output
    gradient through both and assert, each with relative error < ``tol``: the outputs (same shape), every
    input gradient and every parameter gradient of ``block`` against ``ref``'s of the same name; then, with
    ``check_buffers``, every buffer (allclose, rtol 1e-5, atol 1e-6).

    load: first load block's state_dict into ref (strict) and assert both have the same keys.
    seed: reseed torch before each forward (blocks that draw random numbers, e.g. drop path).
    params: module -> {name: parameter} to compare (default: all named parameters).
    same_param_names: also assert that block and ref have the same parameter names.
    unused_params: a parameter whose ref gradient is None must have none either (and at least one
        parameter is compared); otherwise every block parameter must have a gradient.
    grad_atol: a parameter gradient also passes when its max abs difference is below this.
    """
    if load:
        ref.load_state_dict(block.state_dict(), strict=True)
        assert set(block.state_dict()) == set(ref.state_dict())
    inputs = [inputs] if isinstance(inputs, torch.Tensor) else list(inputs)
    xs1 = [x.clone().requires_grad_(True) for x in inputs]
    xs2 = [x.clone().requires_grad_(True) for x in inputs]
    if seed is not None:
        torch.manual_seed(seed)
    y1 = block(*xs1)
    if seed is not None:
        torch.manual_seed(seed)
    y2 = ref(*xs2)
    assert y1.shape == y2.shape
    assert rel_error(y1, y2) < tol, f"output rel error {rel_error(y1, y2)}"
    g = torch.randn_like(y2)
    y1.backward(g)
    y2.backward(g)
    for i, (a, b) in enumerate(zip(xs1, xs2)):
        assert rel_error(a.grad, b.grad) < tol, f"grad of input {i}: rel error {rel_error(a.grad, b.grad)}"
    named = params if params is not None else (lambda m: dict(m.named_parameters()))
    block_params, ref_params = named(block), named(ref)
    if same_param_names:
        assert set(ref_params) == set(block_params)
    n_grads = 0
    for name, p in block_params.items():
        ref_grad = ref_params[name].grad
        if unused_params and ref_grad is None:
            assert p.grad is None, name
            continue
        assert p.grad is not None, name
        err = rel_error(p.grad, ref_grad)
        close = grad_atol is not None and (p.grad - ref_grad).abs().max() < grad_atol
        assert err < tol or close, f"grad of {name}: rel error {err}"
        n_grads += 1
    if unused_params:
        assert n_grads > 0
    if check_buffers:
        ref_buffers = dict(ref.named_buffers())
        for name, b in block.named_buffers():
            assert torch.allclose(b.float(), ref_buffers[name].float(), rtol=1e-5, atol=1e-6), name


def check_fwd_bwd(mine, ref, shape, train, tol=1e-5, check_buffers=True):
    """Both modules in ``train`` mode, one random input of ``shape``: :func:`compare_to_reference` without
    reloading (ref already holds mine's state), buffers compared in training mode only."""
    mine.train(train)
    ref.train(train)
    compare_to_reference(mine, ref, torch.randn(*shape), tol, load=False, check_buffers=train and check_buffers)


# ---------------------------------------------------------------- lkconv's depthwise convs inside a block


def _depthwise_named(module):
    for name, m in module.named_modules():
        if isinstance(m, nn.Conv2d) and m.groups == m.in_channels and m.in_channels > 1:
            yield name, m


def depthwise_convs(module):
    """The depthwise convs (groups == in_channels > 1) of module, nn.Conv2d or DepthwiseConv2d."""
    return [m for _, m in _depthwise_named(module)]


def assert_depthwise_on_lkconv(module, expect_some=False):
    """Every depthwise conv of module is lkconv's DepthwiseConv2d (and, with expect_some, there is one)."""
    found = 0
    for name, m in _depthwise_named(module):
        assert isinstance(m, DepthwiseConv2d), f"{name} is a depthwise nn.Conv2d, not lkconv's"
        found += 1
    assert found or not expect_some


def count_depthwise_calls(monkeypatch):
    """A list that records the direction ("fwd", "dgrad", "wgrad") of every call reaching lkconv's op.

    "auto" may hand a call whose every direction PyTorch runs fastest straight to PyTorch; that shortcut is
    turned off here so that every call is seen.
    """
    from lkconv.ops.depthwise2d import op

    calls = []
    real = op._Call.run

    def counting(self, direction, *args):
        calls.append(direction)
        return real(self, direction, *args)

    monkeypatch.setattr(op._Call, "run", counting)
    monkeypatch.setattr(op._Call, "use_torch", lambda self, *args: False)
    return calls


# ---------------------------------------------------------------- layouts, autocast, drop path


def check_channels_last(block, x, tol=1e-5):
    """block on x in channels_last gives block(x) up to ``tol`` (runs with grad mode as the caller has it)."""
    y = block(x)
    y_cl = block(x.contiguous(memory_format=torch.channels_last))
    assert rel_error(y_cl, y) < tol


def check_bf16_autocast(block, ref, inputs):
    """Under bf16 autocast: close to the fp32 result, and the same as the official definition under autocast
    (same output dtype, outputs and input grads; parameter grads up to bf16 rounding of the weight grads)."""
    ref.load_state_dict(block.state_dict(), strict=True)
    with torch.no_grad():
        y32 = block(*inputs)
    xs1 = [x.clone().requires_grad_(True) for x in inputs]
    xs2 = [x.clone().requires_grad_(True) for x in inputs]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y1, y2 = block(*xs1), ref(*xs2)
    assert y1.dtype == y2.dtype and y1.shape == y32.shape
    assert rel_error(y1, y32) < 3e-2, f"bf16 vs fp32: {rel_error(y1, y32)}"
    assert rel_error(y1, y2) < 1e-2, f"bf16 vs official bf16: {rel_error(y1, y2)}"
    g = torch.randn_like(y32)
    y1.float().backward(g)
    y2.float().backward(g)
    for a, b in zip(xs1, xs2):
        assert a.grad.dtype == torch.float32
        assert rel_error(a.grad, b.grad) < 1e-2, f"input grad: {rel_error(a.grad, b.grad)}"
    ref_params = dict(ref.named_parameters())
    for name, p in block.named_parameters():
        if p.grad is None:
            assert ref_params[name].grad is None, name
            continue
        err = rel_error(p.grad, ref_params[name].grad)
        assert err < 5e-2, f"grad of {name}: {err}"


def check_bf16_autocast_output(block, x, tol):
    """block(x) under bf16 autocast has block(x)'s shape and is within ``tol`` of it (grad mode as the caller's)."""
    y = block(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y_bf = block(x)
    assert y_bf.shape == y.shape
    err = rel_error(y_bf.float(), y)
    assert err < tol, err


def check_bf16_autocast_eval(mine, ref, x, tol, bf16_input=True):
    """No grad, bf16 autocast: mine(x) has the dtype of ref(x) under autocast and is within ``tol`` of ref's
    fp32 output and of its autocast output; with ``bf16_input``, mine on bf16 x is within ``tol`` of fp32 too."""
    with torch.no_grad():
        full = ref(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = mine(x)
            ref_bf16 = ref(x)
            out_bf16_in = mine(x.to(torch.bfloat16)) if bf16_input else None
    assert out.dtype == ref_bf16.dtype
    assert rel_error(out, full) < tol
    assert rel_error(out, ref_bf16) < tol
    if bf16_input:
        assert rel_error(out_bf16_in, full) < tol


def check_bf16_autocast_vs_fp32(block, x, tol):
    """Under bf16 autocast, block's output and input grad are within ``tol`` of fp32 (input grad in float32),
    also for bf16 activations into the fp32 weights."""
    y = block(x_ref := x.clone().requires_grad_(True))
    g = torch.randn_like(y)
    y.backward(g)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y_bf = block(x_bf := x.clone().requires_grad_(True))
    assert y_bf.shape == y.shape
    err = rel_error(y_bf.float(), y)
    assert err < tol, err
    y_bf.float().backward(g)
    assert x_bf.grad.dtype == torch.float32
    err = rel_error(x_bf.grad, x_ref.grad)
    assert err < tol, f"input grad: {err}"
    with torch.autocast("cpu", dtype=torch.bfloat16):  # bf16 activations into fp32 weights, as after a conv
        y_mixed = block(x.bfloat16())
    assert rel_error(y_mixed.float(), y) < tol


def check_bf16_autocast_backward(block, x, bf16_input):
    """Backward through block under bf16 autocast (x fed as is or cast to bf16): finite input and parameter
    gradients, every parameter reached."""
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = block(x.to(torch.bfloat16) if bf16_input else x)
    y.float().square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in block.parameters())


def check_drop_path_per_sample(block, x):
    """Training-mode ``block`` (drop_path 0.5, its ``drop_path`` submodule) on a batch x: each sample's residual
    is either dropped (zero) or the full residual scaled by 2, and both happen."""
    with torch.no_grad():
        out = block(x)
        block.drop_path.eval()  # residual without dropping (BN still uses batch statistics)
        full = block(x) - x
    kept = dropped = 0
    for i in range(x.shape[0]):
        res = out[i] - x[i]
        if torch.equal(res, torch.zeros_like(res)):
            dropped += 1
        else:
            assert torch.allclose(res, 2 * full[i], rtol=1e-5, atol=1e-6)
            kept += 1
    assert kept > 5 and dropped > 5
