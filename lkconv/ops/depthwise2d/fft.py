"""Depthwise 2D convolution by FFT: forward, input gradient and weight gradient are each one spectral product.

All three directions work in one frame of (Ph, Pw) points per plane. The unpadded input x sits at the frame's
origin, the stride-1 output y1 (y = y1[::s]) and the zero-upsampled output gradient dy_up too, and tap (i, j) of
the kernel sits at ((pt - i*dh) mod Ph, (pl - j*dw) mod Pw) in a kernel frame g, so that (per axis)

    forward  y1[t] = sum_u x[u] g[t - u]       Y1 = X * G,            y  = y1[:Ho1:s]
    dgrad    dx[u] = sum_t dy_up[t] g[t - u]   DX = DYup * conj(G),   dx = dx[:H]
    wgrad    k[i]  = h[pt - i*d],              h  = irfft(sum_n DYup * conj(X))

with all indices mod P. None of them wraps around when P >= H + max(pt, pb) (and P holds the kernel and y1), so
zero padding costs no memory traffic and the frame is smaller than the padded input: 72 points against 86 for a
56-wide plane with a 31-tap kernel. Frame sizes have no prime factors above 7. Spectra are float32 (float64 for
float64 input); channels are processed in blocks so that the complex workspace stays under
``LKCONV_FFT_WORKSPACE_MB`` (default 1024). The weight's spectrum is reused while the weight tensor is unchanged
(same object, same version) in forward calls that record no gradient for it.

Passes per direction: frame, rfft2, spectral product, irfft2 (unscaled: the 1/(Ph*Pw) rides on the small kernel
spectrum), crop. :func:`conv_backward` computes both gradients from one spectrum of the output gradient. The
batch-summed lag spectrum of the weight gradient, frames of anything but a dense NCHW tensor of the spectra's
float type (channels_last, strided, half precision, zero-upsampled output gradients) and crops into outputs with
non-contiguous rows (channels_last) are Triton passes (:mod:`.fft_kernels`) where a kernel can run; torch ops
compute them elsewhere (and are their references).
"""
from __future__ import annotations

import functools
import os
import weakref
from typing import Optional, Tuple

import torch

from ..._triton import can_launch
from . import fft_kernels
from .params import conv_out_hw, output_memory_format

SUPPORTED_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)


def next_fast_len(n: int) -> int:
    """Smallest m >= n whose prime factors are all in {2, 3, 5, 7} (memoized in eager calls; traced directly under
    torch.compile, which warns about memoized functions)."""
    return _smooth_at_least(n) if torch.compiler.is_compiling() else _smooth_at_least_memo(n)


def _smooth_at_least(n: int) -> int:
    m = max(1, n)
    while True:
        r = m
        for p in (2, 3, 5, 7):
            while r % p == 0:
                r //= p
        if r == 1:
            return m
        m += 1


_smooth_at_least_memo = functools.lru_cache(maxsize=4096)(_smooth_at_least)


def _workspace_bytes() -> int:
    return int(float(os.environ.get("LKCONV_FFT_WORKSPACE_MB", "1024")) * 2**20)


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


class _Geometry:
    """Frame size and tap positions of one call (one axis each for H and W)."""

    def __init__(self, x_hw, k_hw, stride, pad, dilation):
        h, w = x_hw
        kh, kw = k_hw
        self.pad, self.dilation, self.kernel = tuple(pad), tuple(dilation), (kh, kw)
        self.ho, self.wo = conv_out_hw(h, w, kh, kw, stride, pad, dilation)
        kdh, kdw = (kh - 1) * dilation[0] + 1, (kw - 1) * dilation[1] + 1
        self.ho1, self.wo1 = h + pad[0] + pad[1] - kdh + 1, w + pad[2] + pad[3] - kdw + 1  # stride-1 output
        self.frame = (next_fast_len(max(h + max(pad[0], pad[1]), kdh, self.ho1)),
                      next_fast_len(max(w + max(pad[2], pad[3]), kdw, self.wo1)))

    def key(self):
        """What the kernel frame depends on."""
        return (self.frame, self.kernel, self.pad[0], self.pad[2], self.dilation)

    def taps(self, device) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Index tensors on ``device``, computed there (no host-to-device copy, so graph capture works): tap rows
        (kh,), tap columns (kw,) and the taps' flat positions in the frame (kh*kw,)."""
        (kh, kw), (ph, pw) = self.kernel, self.frame
        rows = (self.pad[0] - torch.arange(kh, device=device) * self.dilation[0]) % ph
        cols = (self.pad[2] - torch.arange(kw, device=device) * self.dilation[1]) % pw
        return rows, cols, (rows[:, None] * pw + cols[None, :]).flatten()


def _pads_in_one_pass(t: torch.Tensor, dtype, step) -> bool:
    """A dense NCHW tensor of the frame's dtype, not upsampled: torch's pad frames it in one pass."""
    return tuple(step) == (1, 1) and t.dtype == dtype and t.is_contiguous()


def _framed(t: torch.Tensor, frame, dtype, step=(1, 1)) -> torch.Tensor:
    """Contiguous (N, C, Ph, Pw) zeros holding t at the frame's origin, ``step`` apart (zero-upsampled).
    torch pads what it pads in one pass (as fast); the Triton pass takes the rest."""
    if can_launch(t) and not _pads_in_one_pass(t, dtype, step):
        return fft_kernels.frame(t, frame, dtype, step)
    return framed_reference(t, frame, dtype, step)


def framed_reference(t: torch.Tensor, frame, dtype, step=(1, 1)) -> torch.Tensor:
    """:func:`_framed` in torch ops."""
    h, w = t.shape[2:]
    if _pads_in_one_pass(t, dtype, step):
        return torch.nn.functional.pad(t, (0, frame[1] - w, 0, frame[0] - h))
    out = t.new_zeros(*t.shape[:2], *frame, dtype=dtype)
    out[..., : (h - 1) * step[0] + 1: step[0], : (w - 1) * step[1] + 1: step[1]] = t
    return out


def _crop(src: torch.Tensor, out: torch.Tensor, bias, step) -> None:
    """out[n, c, i, j] = src[n, c, i*step[0], j*step[1]] (+ bias[c]) for a frame src (N, C, Ph, Pw).
    The Triton pass serves outputs whose rows are not contiguous (channels_last); torch copies NCHW as fast."""
    if can_launch(out) and out.stride(3) != 1:
        fft_kernels.crop(src, out, bias, step)
        return
    ho, wo = out.shape[2:]
    y = src[..., : (ho - 1) * step[0] + 1: step[0], : (wo - 1) * step[1] + 1: step[1]]
    if bias is None:
        out.copy_(y)
    else:
        torch.add(y, bias.view(1, -1, 1, 1).to(y.dtype), out=out)


def _lag_spectrum(dyf: torch.Tensor, xf: torch.Tensor, m: int) -> torch.Tensor:
    """sum over the batch of DYup * conj(X): (C*m, Ph, Pf) for dyf (N, C*m, Ph, Pf), xf (N, C, Ph, Pf) (xf may
    be overwritten). One pass over both spectra where a Triton kernel can run, else the reference."""
    if can_launch(dyf) and fft_kernels.serves(dyf, xf):
        return fft_kernels.lag_spectrum(dyf, xf, m)
    return lag_spectrum_reference(dyf, xf, m)


def lag_spectrum_reference(dyf: torch.Tensor, xf: torch.Tensor, m: int) -> torch.Tensor:
    """:func:`_lag_spectrum` in torch ops (three passes; xf is conjugated in place)."""
    xf = xf.conj_physical_()  # in place: a lazily conjugated operand would be copied by the product
    if m == 1:
        return xf.mul_(dyf).sum(0)
    n, c = xf.shape[:2]
    return (dyf.view(n, c, m, *dyf.shape[-2:]) * xf.unsqueeze(2)).sum(0).flatten(0, 1)


def _kernel_frame(weight: torch.Tensor, geo: _Geometry, dtype) -> torch.Tensor:
    """(C*m, Ph, Pw) frame g with each tap at its (row, col) (distinct points: the frame holds the kernel)."""
    cw = weight.shape[0]
    flat = geo.taps(weight.device)[2]
    g = weight.new_zeros(cw, geo.frame[0] * geo.frame[1], dtype=dtype)
    return g.index_copy_(1, flat, weight.reshape(cw, -1).to(dtype)).view(cw, *geo.frame)


class _SpectrumCache:
    """rfft2 of a weight's frame, kept while the same tensor object is alive and unmodified; not kept when made
    inside a CUDA-graph capture (its values exist only once the graph is replayed)."""

    def __init__(self, size: int = 16):
        self.size = size
        self.entries = []  # (weakref, version, key, spectrum)

    def get(self, weight: torch.Tensor, key, make):
        if weight.requires_grad and torch.is_grad_enabled():
            return make()  # training: the weight changes every step, caching would only hold memory
        for ref, ver, k, spec in self.entries:
            if ref() is weight and ver == weight._version and k == key:
                return spec
        spec = make()
        if spec.is_cuda and torch.cuda.is_current_stream_capturing():
            return spec
        self.entries = [e for e in self.entries if e[0]() is not None][-(self.size - 1):]
        self.entries.append((weakref.ref(weight), weight._version, key, spec))
        return spec


_spectra = _SpectrumCache()


def _kernel_spectrum(weight, geo: _Geometry, dtype, c0: int, c1: int, reuse: bool = True) -> torch.Tensor:
    """G / (Ph*Pw) for output channels [c0, c1): (c1 - c0, Ph, Pw // 2 + 1) complex. The inverse transforms run
    unscaled (norm="forward"), so the 1 / (Ph*Pw) rides on this small spectrum instead of a pass over the
    output. ``reuse``: from and into the cache (the gradients pass False: in training the weight changes after
    every backward)."""
    make = lambda: torch.fft.rfft2(_kernel_frame(weight[c0:c1], geo, dtype), norm="forward")  # noqa: E731
    return _spectra.get(weight, (geo.key(), dtype, c0, c1), make) if reuse else make()


def _channel_blocks(n: int, c_out: int, f: Tuple[int, int], elem: int):
    """Channel ranges whose workspace (a real frame and two spectra per image and channel) fits the budget."""
    per_channel = (n + 1) * f[0] * (f[1] // 2 + 1) * 2 * elem * 3
    block = max(1, min(c_out, _workspace_bytes() // max(per_channel, 1)))
    return [(c0, min(c_out, c0 + block)) for c0 in range(0, c_out, block)]


def conv_fwd(x, weight, bias, stride, pad, dilation) -> torch.Tensor:
    """y (N, C*m, Ho, Wo), in x's dtype and memory format, for x (N, C, H, W); pad = (top, bottom, left, right)."""
    n, c, h, w = x.shape
    cw, _, kh, kw = weight.shape
    m = cw // c
    dt = _compute_dtype(x.dtype)
    geo = _Geometry((h, w), (kh, kw), stride, pad, dilation)
    out = torch.empty(n, cw, geo.ho, geo.wo, device=x.device, dtype=x.dtype, memory_format=output_memory_format(x))
    if out.numel() == 0:
        return out
    for c0, c1 in _channel_blocks(n, cw, geo.frame, torch.finfo(dt).bits // 8):
        g = _kernel_spectrum(weight, geo, dt, c0, c1)
        i0, i1 = c0 // m, (c1 - 1) // m + 1  # the input channels feeding outputs [c0, c1)
        xf = torch.fft.rfft2(_framed(x[:, i0:i1], geo.frame, dt))
        if m > 1:
            xf = xf.repeat_interleave(m, dim=1)[:, c0 - i0 * m: c1 - i0 * m]
        y1 = torch.fft.irfft2(xf.mul_(g), s=geo.frame, norm="forward")
        _crop(y1, out[:, c0:c1], None if bias is None else bias[c0:c1], stride)
    return out


def conv_dgrad(grad_out, x_shape, weight, stride, pad, dilation, memory_format=None) -> torch.Tensor:
    """dL/dx (N, C, H, W) in grad_out's dtype, in ``memory_format`` (default: grad_out's)."""
    n, c, h, w = x_shape
    cw, _, kh, kw = weight.shape
    m = cw // c
    dt = _compute_dtype(grad_out.dtype)
    geo = _Geometry((h, w), (kh, kw), stride, pad, dilation)
    dx = torch.empty(x_shape, device=grad_out.device, dtype=grad_out.dtype,
                     memory_format=memory_format or output_memory_format(grad_out))
    if dx.numel() == 0:
        return dx
    if grad_out.numel() == 0:
        return dx.zero_()
    for c0, c1 in _channel_blocks(n, c, geo.frame, torch.finfo(dt).bits // 8 * m):
        dyf = torch.fft.rfft2(_framed(grad_out[:, c0 * m: c1 * m], geo.frame, dt, stride))
        _input_gradient(dyf, weight, geo, c0, c1, m, dx[:, c0:c1])
    return dx


def _input_gradient(dyf: torch.Tensor, weight, geo: _Geometry, c0: int, c1: int, m: int, dx: torch.Tensor) -> None:
    """dx (N, c1 - c0, H, W) of input channels [c0, c1) from dyf, their output gradients' spectrum (consumed)."""
    g = _kernel_spectrum(weight, geo, dyf.real.dtype, c0 * m, c1 * m, reuse=False)
    prod = dyf.mul_(torch.conj_physical(g))
    if m > 1:
        prod = prod.view(prod.shape[0], c1 - c0, m, *prod.shape[-2:]).sum(2)
    _crop(torch.fft.irfft2(prod, s=geo.frame, norm="forward"), dx, None, (1, 1))


def conv_wgrad(grad_out, x, weight_shape, stride, pad, dilation) -> torch.Tensor:
    """dL/dweight (C*m, 1, kh, kw) in float32 (float64 for float64 input)."""
    return _gradients(grad_out, x, weight_shape, None, stride, pad, dilation)[1]


def conv_backward(grad_out, x, weight, stride, pad, dilation):
    """(dL/dx as conv_dgrad returns it, dL/dweight as conv_wgrad returns it) from one spectrum of grad_out."""
    return _gradients(grad_out, x, weight.shape, weight, stride, pad, dilation)


def _gradients(grad_out, x, weight_shape, weight, stride, pad, dilation):
    """(dx or None, dw): dx only when ``weight`` is given; grad_out is transformed once per channel block."""
    n, c, h, w = x.shape
    cw, _, kh, kw = weight_shape
    m = cw // c
    dt = _compute_dtype(grad_out.dtype)
    geo = _Geometry((h, w), (kh, kw), stride, pad, dilation)
    dx = None
    if weight is not None:
        dx = torch.empty(x.shape, device=grad_out.device, dtype=grad_out.dtype, memory_format=output_memory_format(x))
    dw = torch.zeros(cw, 1, kh, kw, device=x.device, dtype=dt)
    if x.numel() == 0 or grad_out.numel() == 0:
        return (None if dx is None else dx.zero_()), dw
    rows, cols, _ = geo.taps(x.device)
    scale = 1.0 / (geo.frame[0] * geo.frame[1])
    for c0, c1 in _channel_blocks(n, c, geo.frame, torch.finfo(dt).bits // 8 * (m + 1)):
        o0, o1 = c0 * m, c1 * m
        dyf = torch.fft.rfft2(_framed(grad_out[:, o0:o1], geo.frame, dt, stride))
        xf = torch.fft.rfft2(_framed(x[:, c0:c1], geo.frame, dt))
        h_lags = torch.fft.irfft2(_lag_spectrum(dyf, xf, m), s=geo.frame, norm="forward")  # (o1 - o0, Ph, Pw)
        del xf
        dw[o0:o1, 0] = h_lags.index_select(1, rows).index_select(2, cols) * scale
        if dx is not None:
            _input_gradient(dyf, weight, geo, c0, c1, m, dx[:, c0:c1])
    return dx, dw


def unsupported_reason_for(prob) -> Optional[str]:
    """None when the FFT algorithm can serve this Problem, else why not."""
    if prob.dtype not in SUPPORTED_DTYPES:
        return f"dtype {prob.dtype} (fft supports float32, float16, bfloat16, float64)"
    return None
