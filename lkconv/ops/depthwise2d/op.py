"""``lkconv.depthwise_conv2d``: torch.library custom ops (forward, input grad, weight grad) with autograd.

Registering the three directions as custom ops keeps ``torch.compile`` from graph-breaking on them: the
compiler sees opaque ops with fake (shape-only) implementations and calls the real ones at run time.
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import torch
from torch import Tensor

from . import dispatch
from .params import IntOrPair, check_tensors, conv_out_hw, output_memory_format, parse_conv_args
from .problem import Problem
from .reference import _mode_pad


@torch.library.custom_op("lkconv::depthwise_conv2d_fwd", mutates_args=())
def depthwise_conv2d_fwd(
    x: Tensor, weight: Tensor, bias: Optional[Tensor], stride: List[int], pad: List[int], dilation: List[int],
    algorithm: str,
) -> Tensor:
    """y (N, C*m, Ho, Wo) = depthwise conv of x (N, C, H, W) with zero padding pad = [top, bottom, left, right]."""
    return dispatch.run("fwd", algorithm, x, weight, bias, stride, pad, dilation)


@depthwise_conv2d_fwd.register_fake
def _(x, weight, bias, stride, pad, dilation, algorithm):
    ho, wo = conv_out_hw(x.shape[2], x.shape[3], weight.shape[2], weight.shape[3], stride, pad, dilation)
    return torch.empty((x.shape[0], weight.shape[0], ho, wo), dtype=x.dtype, device=x.device,
                       memory_format=output_memory_format(x))


@torch.library.custom_op("lkconv::depthwise_conv2d_dgrad", mutates_args=())
def depthwise_conv2d_dgrad(
    grad_out: Tensor, x: Tensor, weight: Tensor, stride: List[int], pad: List[int], dilation: List[int],
    algorithm: str,
) -> Tensor:
    """dL/dx, shaped and laid out like x (only x's metadata is read)."""
    return dispatch.run("dgrad", algorithm, grad_out, x, weight, stride, pad, dilation)


@depthwise_conv2d_dgrad.register_fake
def _(grad_out, x, weight, stride, pad, dilation, algorithm):
    return torch.empty(x.shape, dtype=x.dtype, device=x.device, memory_format=output_memory_format(x))


@torch.library.custom_op("lkconv::depthwise_conv2d_wgrad", mutates_args=())
def depthwise_conv2d_wgrad(
    grad_out: Tensor, x: Tensor, weight: Tensor, stride: List[int], pad: List[int], dilation: List[int],
    algorithm: str,
) -> Tensor:
    """dL/dweight, shaped like weight (C*m, 1, kh, kw) (only weight's metadata is read)."""
    return dispatch.run("wgrad", algorithm, grad_out, x, weight, stride, pad, dilation)


@depthwise_conv2d_wgrad.register_fake
def _(grad_out, x, weight, stride, pad, dilation, algorithm):
    return weight.new_empty(weight.shape)


@torch.library.custom_op("lkconv::depthwise_conv2d_bwd", mutates_args=())
def depthwise_conv2d_bwd(
    grad_out: Tensor, x: Tensor, weight: Tensor, stride: List[int], pad: List[int], dilation: List[int],
    algorithm: str,
) -> Tuple[Tensor, Tensor]:
    """(dL/dx, dL/dweight) together: one pass where one algorithm computes both (the FFT's joint backward)."""
    return dispatch.run_backward(algorithm, grad_out, x, weight, stride, pad, dilation)


@depthwise_conv2d_bwd.register_fake
def _(grad_out, x, weight, stride, pad, dilation, algorithm):
    return (torch.empty(x.shape, dtype=x.dtype, device=x.device, memory_format=output_memory_format(x)),
            weight.new_empty(weight.shape))


def _bias_grad(grad_out: Tensor) -> Tensor:
    """dL/dbias: grad_out summed over batch and positions, accumulated in float32 (float64 for float64)."""
    acc = torch.float64 if grad_out.dtype == torch.float64 else torch.float32
    return grad_out.sum(dim=(0, 2, 3), dtype=acc).to(grad_out.dtype)


def _setup_context(ctx, inputs, output):
    x, weight, bias, stride, pad, dilation, algorithm = inputs
    ctx.save_for_backward(x, weight)
    ctx.has_bias = bias is not None
    ctx.args = (stride, pad, dilation, algorithm)


def _backward(ctx, grad_out):
    x, weight = ctx.saved_tensors
    dx = dw = db = None
    if ctx.needs_input_grad[0] and ctx.needs_input_grad[1]:
        dx, dw = depthwise_conv2d_bwd(grad_out, x, weight, *ctx.args)
    elif ctx.needs_input_grad[0]:
        dx = depthwise_conv2d_dgrad(grad_out, x, weight, *ctx.args)
    elif ctx.needs_input_grad[1]:
        dw = depthwise_conv2d_wgrad(grad_out, x, weight, *ctx.args)
    if ctx.has_bias and ctx.needs_input_grad[2]:
        db = _bias_grad(grad_out)
    return dx, dw, db, None, None, None, None


depthwise_conv2d_fwd.register_autograd(_backward, setup_context=_setup_context)


class _Call:
    """One eager call signature, resolved once: its geometry and, per direction, a bound (algorithm, callable)."""

    __slots__ = ("geom", "algorithm", "bound", "step_torch", "pair_verdicts")

    def __init__(self, geom, algorithm: str):
        self.geom, self.algorithm, self.bound = geom, algorithm, {}
        self.step_torch: Optional[bool] = None  # "auto" with gradients: PyTorch ran the whole step faster
        self.pair_verdicts: dict = {}  # (dgrad, wgrad) algorithms -> the FFT's joint backward measured faster

    def binding(self, direction: str, t0: Tensor, t1: Tensor, t2: Optional[Tensor]):
        """(algorithm name, callable) for fwd(x, w, b) or dgrad/wgrad(dy, x, w)."""
        capturing = t0.is_cuda and torch.cuda.is_current_stream_capturing()
        hit = None if capturing else self.bound.get(direction)  # under capture "auto" picks by GPU time
        if hit is None:
            g = self.geom
            hit = dispatch.bind(direction, self.algorithm, t0, t1, t2, g.stride, g.pad, g.dilation)
            if not capturing:
                self.bound[direction] = hit
        return hit

    def run(self, direction: str, t0: Tensor, t1: Tensor, t2: Optional[Tensor]) -> Tensor:
        """fwd(x, w, b) or dgrad/wgrad(dy, x, w)."""
        return self.binding(direction, t0, t1, t2)[1](t0, t1, t2)

    def run_backward(self, dy: Tensor, x: Tensor, w: Tensor, need_dx: bool, need_dw: bool):
        """(dx or None, dw or None); one pass for both where that is faster (:func:`dispatch.run_pair`)."""
        if need_dx and need_dw:
            g = self.geom
            return dispatch.run_pair(self.binding("dgrad", dy, x, w), self.binding("wgrad", dy, x, w), dy, x, w,
                                     g.stride, g.pad, g.dilation, self.pair_verdicts, self.algorithm == "auto")
        return (self.run("dgrad", dy, x, w) if need_dx else None, self.run("wgrad", dy, x, w) if need_dw else None)

    def use_torch(self, x: Tensor, weight: Tensor, bias: Optional[Tensor]) -> bool:
        """For "auto": hand the whole call to PyTorch (its own autograd, no wrapper cost)?"""
        if x.is_cuda and torch.cuda.is_current_stream_capturing():
            return False  # a replayed graph has no host cost: each direction runs its choice by GPU time
        if not (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad)):
            return self.all_torch(False)
        if self.step_torch is None and x.is_cuda:
            self.step_torch = _whole_step_choice(self, x, weight, bias)
        return bool(self.step_torch) or self.all_torch(True)

    def all_torch(self, needs_grad: bool) -> bool:
        """True when "auto" measured PyTorch fastest in every direction this call will run."""
        b = self.bound
        ok = "fwd" in b and b["fwd"][0] == "torch"
        if ok and needs_grad:
            ok = "dgrad" in b and b["dgrad"][0] == "torch" and "wgrad" in b and b["wgrad"][0] == "torch"
        return ok


class _DepthwiseConv2dFunction(torch.autograd.Function):
    """Eager-mode path: the same computation as the custom ops without their per-call Python overhead."""

    @staticmethod
    def forward(ctx, x, weight, bias, call):
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        ctx.call = call
        return call.run("fwd", x, weight, bias)

    @staticmethod
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        dx, dw = ctx.call.run_backward(grad_out, x, weight, ctx.needs_input_grad[0], ctx.needs_input_grad[1])
        db = None
        if ctx.has_bias and ctx.needs_input_grad[2]:
            db = _bias_grad(grad_out)
        return dx, dw, db, None


def _whole_step_choice(call: _Call, x: Tensor, weight: Tensor, bias: Optional[Tensor]) -> bool:
    """Time forward + both gradients through lkconv and through PyTorch on copies of the call's tensors."""
    g = call.geom
    leaf = lambda t: None if t is None else t.detach().requires_grad_(t.requires_grad)  # noqa: E731
    xs, ws, bs = leaf(x), leaf(weight), leaf(bias)
    inputs = [t for t in (xs, ws, bs) if t is not None and t.requires_grad]
    # the caller's random stream is left untouched
    with torch.no_grad(), torch.random.fork_rng(devices=[x.device] if x.is_cuda else []):
        dy = torch.randn_like(dispatch.TorchAlgorithm().fwd(xs, ws, bs, g.stride, g.pad, g.dilation))
    with torch.enable_grad():
        ours = lambda: torch.autograd.grad(_DepthwiseConv2dFunction.apply(xs, ws, bs, call), inputs, dy)  # noqa: E731
        theirs = lambda: torch.autograd.grad(  # noqa: E731
            dispatch.TorchAlgorithm().fwd(xs, ws, bs, g.stride, g.pad, g.dilation), inputs, dy)
        prob = Problem.make("step", xs, ws, g.stride, g.pad, g.dilation)
        return dispatch.choose_whole_step(prob, ours, theirs) == "torch"


def _autocast(input, weight, bias):
    """Under autocast, convolve in the autocast dtype (as F.conv2d does); otherwise leave dtypes alone."""
    if not isinstance(input, Tensor) or not isinstance(weight, Tensor):
        return input, weight, bias
    dev = input.device.type
    if dev not in ("cuda", "cpu") or not torch.is_autocast_enabled(dev) or not input.is_floating_point():
        return input, weight, bias
    dtype = torch.get_autocast_dtype(dev)
    cast = lambda t: t.to(dtype) if isinstance(t, Tensor) and t.is_floating_point() and t.dtype != torch.float64 else t  # noqa: E731
    return cast(input), cast(weight), cast(bias)


def _hashable(v):
    return tuple(v) if isinstance(v, (list, torch.Size)) else v


_calls: dict = {}  # eager call signature -> _Call (validated, resolved and bound once)
dispatch._forget_hooks.append(_calls.clear)


def _signature(input, weight, bias, stride, padding, dilation, padding_mode, algorithm):
    if not (isinstance(input, Tensor) and isinstance(weight, Tensor) and (bias is None or isinstance(bias, Tensor))):
        return None
    try:
        b = None if bias is None else (bias.shape, bias.stride(), bias.dtype, bias.device)
        return (input.shape, input.stride(), input.dtype, input.device, weight.shape, weight.stride(), weight.dtype,
                weight.device, b, _hashable(stride), _hashable(padding), _hashable(dilation), padding_mode, algorithm)
    except TypeError:
        return None


def _new_call(input, weight, bias, stride, padding, dilation, padding_mode, algorithm) -> _Call:
    """Validate the arguments; an explicit algorithm that cannot serve the call raises ValueError."""
    dispatch.check_algorithm_name(algorithm)
    check_tensors(input, weight, bias)
    geom = parse_conv_args(input, weight, stride, padding, dilation, padding_mode)
    if algorithm != "auto":
        x = _padded_input(input, geom)
        why = dispatch.explain(Problem.make("fwd", x, weight, geom.stride, geom.pad, geom.dilation), algorithm)
        if why is not None:
            raise ValueError(f"algorithm={algorithm!r} cannot serve this call: {why}")
    return _Call(geom, algorithm)


def _padded_input(input: Tensor, geom) -> Tensor:
    """input after the non-zero padding mode (if any), in the input's memory format."""
    if geom.padding_mode == "zeros":
        return input
    x = _mode_pad(input, geom.mode_pad, geom.padding_mode)
    if x.dtype != input.dtype:  # CPU autocast runs F.pad's reflect/replicate in float32
        x = x.to(input.dtype)
    if x is not input and output_memory_format(input) == torch.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)  # F.pad's reflect/replicate/circular return NCHW
    return x


def depthwise_conv2d(
    input: Tensor,
    weight: Tensor,
    bias: Optional[Tensor] = None,
    stride: IntOrPair = 1,
    padding=0,
    dilation: IntOrPair = 1,
    padding_mode: str = "zeros",
    algorithm: str = "auto",
) -> Tensor:
    """Depthwise 2D convolution: ``F.conv2d(input, weight, bias, stride, padding, dilation, groups=C)``.

    input: (N, C, H, W), any memory layout (the output keeps it: NCHW in, NCHW out; channels_last in,
    channels_last out). weight: (C*m, 1, kh, kw) for a depth multiplier m >= 1, any kh, kw >= 1.
    bias: (C*m,) or None. stride, dilation: int or pair. padding: int, pair, "same" or "valid".
    padding_mode: "zeros", "circular", "reflect" or "replicate". dtypes: float32, float16, bfloat16
    (accumulation in float32), float64 (PyTorch's path). algorithm: "auto" (measured choice, cached),
    "direct", "implicit_gemm", "fft" or "torch"; an explicit choice that cannot serve the call raises
    ValueError. Returns (N, C*m, Ho, Wo), differentiable in input, weight and bias.
    """
    input, weight, bias = _autocast(input, weight, bias)
    if torch.compiler.is_compiling():  # an opaque custom op for the compiler (no graph break)
        geom = _new_call(input, weight, bias, stride, padding, dilation, padding_mode, algorithm).geom
        x = _padded_input(input, geom)
        if bias is not None:
            bias = bias.contiguous()
        return depthwise_conv2d_fwd(x, weight, bias, list(geom.stride), list(geom.pad), list(geom.dilation), algorithm)
    sig = _signature(input, weight, bias, stride, padding, dilation, padding_mode, algorithm)
    call = _calls.get(sig) if sig is not None else None
    if call is None:
        call = _new_call(input, weight, bias, stride, padding, dilation, padding_mode, algorithm)
        if sig is not None:
            if len(_calls) > 4096:
                _calls.clear()
            _calls[sig] = call
    geom = call.geom
    x = _padded_input(input, geom)
    if bias is not None and bias.stride(0) != 1:
        bias = bias.contiguous()
    if algorithm == "auto" and call.use_torch(x, weight, bias):
        return dispatch.TorchAlgorithm().fwd(x, weight, bias, geom.stride, geom.pad, geom.dilation)
    return _DepthwiseConv2dFunction.apply(x, weight, bias, call)
