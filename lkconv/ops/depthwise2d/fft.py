"""Depthwise 2D convolution by FFT: forward, input gradient and weight gradient are each one spectral product.

With xp the zero-padded input and kd the dilated kernel, the three directions are (per channel, per axis)

    forward  y_full[t] = sum_i xp[t + i*d] k[i]            correlation:  irfft(X * conj(Kd)),  y = y_full[::s]
    dgrad    dxp[u]    = sum_i dy_up[u - i*d] k[i]         convolution:  irfft(DYup * Kd),     dx = dxp[p:p+H]
    wgrad    g[lag]    = sum_t xp[t + lag] dy_up[t]        correlation:  irfft(sum_n X * conj(DYup)), k = g[::d]

where dy_up is dy with s-1 zeros between samples. FFT sizes are the smallest 2^a 3^b 5^c 7^d that avoid wrap-around,
so the cost barely depends on the kernel size. Spectra are computed in float32 (float64 for float64 input);
channels are processed in blocks so that the complex workspace stays under ``LKCONV_FFT_WORKSPACE_MB``
(default 1024). The weight spectrum is reused while the weight tensor is unchanged (same object, same version).
"""
from __future__ import annotations

import functools
import os
import weakref
from typing import Optional, Sequence, Tuple

import torch

from .params import conv_out_hw

SUPPORTED_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)


@functools.lru_cache(maxsize=4096)
def next_fast_len(n: int) -> int:
    """Smallest m >= n whose prime factors are all in {2, 3, 5, 7}."""
    m = max(1, n)
    while True:
        r = m
        for p in (2, 3, 5, 7):
            while r % p == 0:
                r //= p
        if r == 1:
            return m
        m += 1


def _workspace_bytes() -> int:
    return int(float(os.environ.get("LKCONV_FFT_WORKSPACE_MB", "1024")) * 2**20)


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _dilated(weight: torch.Tensor, d: Tuple[int, int], dtype) -> torch.Tensor:
    """(C*m, kh', kw') dense kernel with zeros between taps."""
    w = weight[:, 0].to(dtype)
    if d == (1, 1):
        return w
    kh, kw = w.shape[-2:]
    out = w.new_zeros(w.shape[0], (kh - 1) * d[0] + 1, (kw - 1) * d[1] + 1)
    out[:, :: d[0], :: d[1]] = w
    return out


class _SpectrumCache:
    """rfft2 of a weight, kept while the same tensor object is alive and unmodified."""

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
        self.entries = [e for e in self.entries if e[0]() is not None][-(self.size - 1):]
        self.entries.append((weakref.ref(weight), weight._version, key, spec))
        return spec


_spectra = _SpectrumCache()


def _channel_blocks(n: int, c_out: int, f: Tuple[int, int], elem: int):
    """Channel ranges whose complex workspace (x, weight and product spectra) fits the budget."""
    per_channel = (n + 2) * f[0] * (f[1] // 2 + 1) * 2 * elem * 2
    block = max(1, min(c_out, _workspace_bytes() // max(per_channel, 1)))
    return [(c0, min(c_out, c0 + block)) for c0 in range(0, c_out, block)]


def _nchw(t: torch.Tensor) -> torch.Tensor:
    """t as a dense NCHW tensor. cuFFT's 2D transforms over channels_last strides run strided; one copy first
    took a channels_last fp32 replknet_31b.s1 step ("auto") from 6.15 to 5.67 ms on an H100."""
    return t.contiguous()


def _pad(x: torch.Tensor, pad: Sequence[int]) -> torch.Tensor:
    pt, pb, pl, pr = pad
    return torch.nn.functional.pad(x, (pl, pr, pt, pb)) if any(pad) else x


def conv_fwd(x, weight, bias, stride, pad, dilation) -> torch.Tensor:
    """y (N, C*m, Ho, Wo) for x (N, C, H, W); pad = (top, bottom, left, right) zeros."""
    n, c = x.shape[:2]
    cw, _, kh, kw = weight.shape
    m = cw // c
    dt = _compute_dtype(x.dtype)
    xp = _pad(_nchw(x), pad)
    hp, wp = xp.shape[-2:]
    ho, wo = conv_out_hw(hp, wp, kh, kw, stride, (0, 0, 0, 0), dilation)
    f = (next_fast_len(hp), next_fast_len(wp))
    kd = _dilated(weight, tuple(dilation), dt)
    out = torch.empty(n, cw, ho, wo, device=x.device, dtype=x.dtype)
    span_h, span_w = (ho - 1) * stride[0] + 1, (wo - 1) * stride[1] + 1
    for c0, c1 in _channel_blocks(n, cw, f, torch.finfo(dt).bits // 8):
        kf = _spectra.get(weight, ("fwd", f, tuple(dilation), c0, c1),
                          lambda: torch.fft.rfft2(kd[c0:c1], s=f).conj())
        xs = xp[:, c0 // m: (c1 - 1) // m + 1].to(dt)
        xf = torch.fft.rfft2(xs, s=f)
        if m > 1:
            xf = xf.repeat_interleave(m, dim=1)[:, c0 - (c0 // m) * m: c0 - (c0 // m) * m + (c1 - c0)]
        y = torch.fft.irfft2(xf * kf, s=f)[..., :span_h: stride[0], :span_w: stride[1]]
        out[:, c0:c1] = y
    if bias is not None:
        out += bias.view(1, -1, 1, 1).to(out.dtype)
    return out


def _upsample(dy: torch.Tensor, stride, size_h: int, size_w: int, dt) -> torch.Tensor:
    """dy with stride-1 zeros between samples, in a (size_h, size_w) frame."""
    if tuple(stride) == (1, 1):
        return dy.to(dt)
    up = dy.new_zeros(dy.shape[0], dy.shape[1], size_h, size_w, dtype=dt)
    up[..., :: stride[0], :: stride[1]] = dy.to(dt)
    return up


def conv_dgrad(grad_out, x_shape, weight, stride, pad, dilation) -> torch.Tensor:
    """dL/dx (N, C, H, W) in grad_out's dtype."""
    n, c, h, w = x_shape
    cw, _, kh, kw = weight.shape
    m = cw // c
    dt = _compute_dtype(grad_out.dtype)
    grad_out = _nchw(grad_out)
    ho, wo = grad_out.shape[-2:]
    lf_h, lf_w = (ho - 1) * stride[0] + 1, (wo - 1) * stride[1] + 1
    kdh, kdw = (kh - 1) * dilation[0] + 1, (kw - 1) * dilation[1] + 1
    hp, wp = h + pad[0] + pad[1], w + pad[2] + pad[3]
    f = (next_fast_len(max(hp, lf_h + kdh - 1)), next_fast_len(max(wp, lf_w + kdw - 1)))
    kd = _dilated(weight, tuple(dilation), dt)
    dx = torch.empty(x_shape, device=grad_out.device, dtype=grad_out.dtype)
    for c0, c1 in _channel_blocks(n, c, f, torch.finfo(dt).bits // 8 * m):
        kf = torch.fft.rfft2(kd[c0 * m: c1 * m], s=f)
        dyf = torch.fft.rfft2(_upsample(grad_out[:, c0 * m: c1 * m], stride, lf_h, lf_w, dt), s=f)
        prod = dyf * kf
        if m > 1:
            prod = prod.view(n, c1 - c0, m, *prod.shape[-2:]).sum(2)
        dxp = torch.fft.irfft2(prod, s=f)
        dx[:, c0:c1] = _crop(dxp, pad[0], pad[2], h, w)
    return dx


def _crop(t: torch.Tensor, top: int, left: int, h: int, w: int) -> torch.Tensor:
    """t[..., top:top+h, left:left+w] with zeros where the window leaves t."""
    H, W = t.shape[-2:]
    if top >= 0 and left >= 0 and top + h <= H and left + w <= W:
        return t[..., top: top + h, left: left + w]
    out = t.new_zeros(*t.shape[:-2], h, w)
    r0, r1 = max(0, top), min(H, top + h)
    q0, q1 = max(0, left), min(W, left + w)
    if r1 > r0 and q1 > q0:
        out[..., r0 - top: r1 - top, q0 - left: q1 - left] = t[..., r0:r1, q0:q1]
    return out


def conv_wgrad(grad_out, x, weight_shape, stride, pad, dilation) -> torch.Tensor:
    """dL/dweight (C*m, 1, kh, kw) in float32 (float64 for float64 input)."""
    n, c = x.shape[:2]
    cw, _, kh, kw = weight_shape
    m = cw // c
    dt = _compute_dtype(x.dtype)
    xp = _pad(_nchw(x), pad)
    grad_out = _nchw(grad_out)
    hp, wp = xp.shape[-2:]
    ho, wo = grad_out.shape[-2:]
    lf_h, lf_w = (ho - 1) * stride[0] + 1, (wo - 1) * stride[1] + 1
    f = (next_fast_len(hp), next_fast_len(wp))
    dw = torch.empty(cw, 1, kh, kw, device=x.device, dtype=dt)
    for c0, c1 in _channel_blocks(n, cw, f, torch.finfo(dt).bits // 8):
        xs = xp[:, c0 // m: (c1 - 1) // m + 1].to(dt)
        xf = torch.fft.rfft2(xs, s=f)
        if m > 1:
            xf = xf.repeat_interleave(m, dim=1)[:, c0 - (c0 // m) * m: c0 - (c0 // m) * m + (c1 - c0)]
        dyf = torch.fft.rfft2(_upsample(grad_out[:, c0:c1], stride, lf_h, lf_w, dt), s=f)
        g = torch.fft.irfft2((xf * dyf.conj()).sum(0), s=f)
        dw[c0:c1, 0] = g[:, : (kh - 1) * dilation[0] + 1: dilation[0], : (kw - 1) * dilation[1] + 1: dilation[1]]
    return dw


def unsupported_reason_for(prob) -> Optional[str]:
    """None when the FFT algorithm can serve this Problem, else why not."""
    if prob.dtype not in SUPPORTED_DTYPES:
        return f"dtype {prob.dtype} (fft supports float32, float16, bfloat16, float64)"
    return None
