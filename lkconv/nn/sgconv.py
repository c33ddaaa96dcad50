"""Global convolutions with implicitly parameterized kernels: SGConv (1D) and a hyper-kernel conv (2D).

``GConv`` (alias ``SGConv``) -- Paper: "What Makes Convolutional Models Great on Long Sequence Modeling?"
(Li, Cai et al., ICLR 2023). Official code: https://github.com/ctlllll/SGConv (gconv_standalone.py, ``GConv``).
Constructor arguments, parameter and buffer names (``D``, ``kernel_list.<i>``, ``decay``, ``multiplier``,
``kernel_norm``, ``kernel_norm_initialized``, ``output_linear.*``, ``norm.norm.*``) are the official ones.

``HyperKernelConv2d`` -- a global depthwise 2D conv whose kernel, as large as the feature map, is generated
by a small coordinate MLP (the hyper-kernel of "HyperZ.Z.W Operator Connects Slow-Fast Networks for Full
Context Interaction", Zhang 2024); it is defined here, see its docstring for exactly what it computes.

Both apply their kernels with FFTs (:func:`_fft_conv1d`, :func:`_fft_depthwise_conv2d_same`).
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["GConv", "SGConv", "HyperKernelConv2d"]

Tensor = torch.Tensor

_KERNEL_ARGS = ("init_scale", "kernel_dim", "n_scales", "decay_min", "decay_max", "lr")
_ACTIVATIONS = (None, "id", "identity", "linear", "tanh", "relu", "gelu", "swish", "silu", "glu", "sigmoid")


def _work_dtype(*tensors: Tensor) -> torch.dtype:
    """float64 if any tensor is float64, else float32 (FFTs of half / bfloat16 run in float32)."""
    return torch.float64 if any(t.dtype == torch.float64 for t in tensors) else torch.float32


def _fft_conv1d(x: Tensor, k: Tensor, D: Tensor) -> Tensor:
    """Long convolution by FFT with the skip term: ``y[b, c, h, t] = sum_s k[c, h, (t - s) mod 2L] x[b, h, s]
    + D[c, h] x[b, h, t]`` for t < L, computed as ``irfft(rfft(x, 2L) * rfft(k, 2L), 2L)[..., :L]``.

    x: (B, H, L); k: (C, H, Lk) with Lk <= 2L; D: (C, H) -> y: (B, C, H, L) in x's dtype. For Lk <= L this is
    the causal convolution ``sum_{s <= t} k[t - s] x[s]``; a length-2L kernel whose second half holds a flipped
    kernel also reaches the future (bidirectional). Runs in float32 (float64 for float64 inputs) with autocast
    off.
    """
    length = x.shape[-1]
    if k.shape[-1] > 2 * length:
        raise ValueError(f"kernel length {k.shape[-1]} exceeds 2 * sequence length ({2 * length})")
    dt = _work_dtype(x, k, D)
    with torch.autocast(x.device.type, enabled=False):
        xw = x.to(dt)
        x_f = torch.fft.rfft(xw, n=2 * length)
        k_f = torch.fft.rfft(k.to(dt), n=2 * length)
        y = torch.fft.irfft(x_f.unsqueeze(1) * k_f, n=2 * length)[..., :length]
        y = y + xw.unsqueeze(1) * D.to(dt).unsqueeze(-1)
    return y.to(x.dtype)


def _activation(name: Optional[str], dim: int) -> nn.Module:
    """The official ``Activation(name)`` modules (those without parameters)."""
    if name in (None, "id", "identity", "linear"):
        return nn.Identity()
    table = {"tanh": nn.Tanh, "relu": nn.ReLU, "gelu": nn.GELU, "swish": nn.SiLU, "silu": nn.SiLU,
             "sigmoid": nn.Sigmoid}
    if name == "glu":
        return nn.GLU(dim=dim)
    return table[name]()


def _initializer(name: str, activation: Optional[str]):
    if activation in (None, "id", "identity", "linear"):
        nonlinearity = "linear"
    elif activation in ("relu", "tanh", "sigmoid"):
        nonlinearity = activation
    elif activation in ("gelu", "swish", "silu"):
        nonlinearity = "relu"
    else:
        raise ValueError(f"initializer {name!r} does not support postact={activation!r} (official "
                         f"get_initializer); use relu/tanh/sigmoid/gelu/swish/silu or none")
    table = {
        "uniform": lambda w: nn.init.kaiming_uniform_(w, nonlinearity=nonlinearity),
        "normal": lambda w: nn.init.kaiming_normal_(w, nonlinearity=nonlinearity),
        "xavier": nn.init.xavier_normal_,
        "zero": lambda w: nn.init.constant_(w, 0),
        "one": lambda w: nn.init.constant_(w, 1),
    }
    if name not in table:
        raise ValueError(f"initializer must be one of {sorted(table)} or None, got {name!r}")
    return table[name]


class _PositionwiseLinear(nn.Module):
    """Official ``TransposedLinear`` (transposed: (B, D, L) -> (B, D', L)) or ``nn.Linear`` ((B, L, D)), optionally
    weight-normalized like ``nn.utils.weight_norm`` (``weight_g`` (D', 1), ``weight_v`` (D', D))."""

    def __init__(self, d_input: int, d_output: int, transposed: bool, weight_norm: bool,
                 initializer: Optional[str], activation: Optional[str]):
        super().__init__()
        self.transposed = transposed
        weight = torch.empty(d_output, d_input)
        nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
        self.bias = nn.Parameter(torch.empty(d_output).uniform_(-1 / math.sqrt(d_input), 1 / math.sqrt(d_input)))
        if transposed:
            self.bias._optim = {"weight_decay": 0.0}
        if initializer is not None:
            _initializer(initializer, activation)(weight)
        if weight_norm:
            self.weight_g = nn.Parameter(weight.norm(dim=1, keepdim=True))
            self.weight_v = nn.Parameter(weight)
        else:
            self.weight = nn.Parameter(weight)

    def effective_weight(self) -> Tensor:
        if hasattr(self, "weight_v"):
            return self.weight_v * (self.weight_g / self.weight_v.norm(dim=1, keepdim=True))
        return self.weight

    def forward(self, x: Tensor) -> Tensor:
        w = self.effective_weight()
        if not self.transposed:
            return F.linear(x, w, self.bias)
        y = torch.einsum("bu...,vu->bv...", x, w)
        return y + self.bias.view(-1, *([1] * (x.dim() - 2)))


class _TransposedLN(nn.Module):
    """Official ``TransposedLN`` (scalar): ``(s / std) * (x - mean + m)`` over dim 1, biased std, no eps."""

    def __init__(self):
        super().__init__()
        self.m = nn.Parameter(torch.zeros(1))
        self.s = nn.Parameter(torch.ones(1))
        self.m._optim = {"weight_decay": 0.0}
        self.s._optim = {"weight_decay": 0.0}

    def forward(self, x: Tensor) -> Tensor:
        std, mean = torch.std_mean(x, dim=1, unbiased=False, keepdim=True)
        return (self.s / std) * (x - mean + self.m)


class _Normalization(nn.Module):
    """Official ``Normalization(d, transposed, 'layer')``: TransposedLN over dim 1, or LayerNorm over the last."""

    def __init__(self, d: int, transposed: bool):
        super().__init__()
        self.transposed = transposed
        self.norm = _TransposedLN() if transposed else nn.LayerNorm(d)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(x)


class GConv(nn.Module):
    """SGConv: a global depthwise convolution with a multi-scale, decaying kernel (official ``GConv``).

    Kernel: ``num_scales`` parameters ``kernel_list[i]`` of shape (C', H, kernel_dim) (C' = ``channels``, doubled
    when ``bidirectional``; H = ``d_model``). In "cat" mode scale i is linearly (``"nearest"`` in ``mode``:
    nearest) upsampled by ``2**(max(0, i - 1) + init_scale)``, the scales are concatenated along the length; in
    "sum" mode scale i is upsampled by ``2**(i + init_scale)``, right-padded to the longest and summed. Scale i
    is multiplied by ``multiplier ** (num_scales - i - 1)`` (``multiplier``: ``linspace(decay_min, decay_max, H)``
    per channel, or 1 in "learnable" mode, where instead ``k[t] *= (t + 1) ** -decay`` with a per-channel
    ``decay`` (frozen when ``"fixed"`` is in ``mode``)). ``num_scales`` defaults to ``1 + ceil(log2(l_max /
    kernel_dim)) - init_scale``. On the first forward, ``kernel_norm`` becomes the L2 norm of each kernel row
    (then ``kernel_norm_initialized`` is set and it stays fixed); the kernel is cropped or zero-padded to the
    input length L and divided by ``kernel_norm``. Bidirectional: the first C kernels look back, the second C
    (flipped) look ahead. Then ``y = k * u + D u`` (:func:`_fft_conv1d`), flattened to (B, C*H, L) channel-major,
    and unless ``linear``: activation, dropout, optional norm (``ln``), and ``output_linear`` (C*H -> H, with
    ``postact``; "glu" doubles its width).

    u: (B, H, L) if ``transposed`` else (B, L, H). Returns ``(y, k)`` with ``y`` (B, H, L) / (B, L, H) (C*H
    channels if ``linear``) and ``k`` the kernel used (``return_kernel=True``) or None, as the official module.
    ``d_state``, ``verbose`` and ``shift`` are accepted and unused, as in the official code; ``hyper_act`` is
    rejected (the official forward never applies it and its output width breaks ``output_linear``).
    Keyword ``kernel_args``: ``kernel_dim`` (64), ``n_scales`` (None: derived), ``init_scale`` (0),
    ``decay_min`` / ``decay_max`` (2), ``lr`` (0.001, stored as ``_optim`` on the kernel parameters).
    """

    requires_length = True

    def __init__(self, d_model: int, d_state: int = 64, l_max: int = 1, channels: int = 1,
                 bidirectional: bool = False, activation: Optional[str] = "gelu", ln: bool = False,
                 postact: Optional[str] = None, initializer: Optional[str] = None, weight_norm: bool = False,
                 hyper_act: Optional[str] = None, dropout: float = 0.0, transposed: bool = True,
                 verbose: bool = False, shift: bool = False, linear: bool = False, mode: str = "cat_randn",
                 **kernel_args):
        super().__init__()
        for name, value in (("d_model", d_model), ("channels", channels), ("l_max", l_max)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        unknown = sorted(set(kernel_args) - set(_KERNEL_ARGS))
        if unknown:
            raise ValueError(f"unknown kernel_args {unknown}; expected a subset of {list(_KERNEL_ARGS)}")
        if hyper_act is not None:
            raise ValueError("hyper_act is not supported: the official GConv never applies it and its doubled "
                             "channels do not match output_linear")
        for name, value in (("activation", activation), ("postact", postact)):
            if value not in _ACTIVATIONS:
                raise ValueError(f"{name} must be one of {list(_ACTIVATIONS)}, got {value!r}")
        if not ("randn" in mode or "cos" in mode) or not ("sum" in mode or "cat" in mode):
            raise ValueError(f"mode must name an init ('randn' or 'cos') and a combination ('cat' or 'sum'), "
                             f"e.g. 'cat_randn' or 'cat_randn_learnable_fixed'; got {mode!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")

        self.h = d_model
        self.n = d_state
        self.bidirectional = bidirectional
        self.ln = ln
        self.channels = channels
        self.transposed = transposed
        self.shift = shift
        self.linear = linear
        self.mode = mode
        self.l_max = l_max
        self.hyper = False

        self.D = nn.Parameter(torch.randn(channels, self.h))
        kernel_channels = channels * 2 if bidirectional else channels

        if not linear:
            self.activation = _activation(activation, dim=-1)
            dropout_cls = nn.Dropout2d if transposed else nn.Dropout
            self.dropout = dropout_cls(dropout) if dropout > 0.0 else nn.Identity()
            self.norm = _Normalization(self.h * channels, transposed) if ln else nn.Identity()
            d_output = self.h * 2 if postact == "glu" else self.h
            out = _PositionwiseLinear(self.h * channels, d_output, transposed, weight_norm, initializer, postact)
            if postact is not None:
                out = nn.Sequential(out, _activation(postact, dim=1 if transposed else -1))
            self.output_linear = out

        self.init_scale = kernel_args.get("init_scale", 0)
        self.kernel_dim = kernel_args.get("kernel_dim", 64)
        if not isinstance(self.kernel_dim, int) or self.kernel_dim < 1:
            raise ValueError(f"kernel_dim must be a positive integer, got {self.kernel_dim!r}")
        num_scales = kernel_args.get("n_scales", None)
        if num_scales is None:
            num_scales = 1 + math.ceil(math.log2(l_max / self.kernel_dim)) - self.init_scale
        if num_scales < 1:
            raise ValueError(f"the kernel needs at least one scale: n_scales = {num_scales} (from l_max={l_max}, "
                             f"kernel_dim={self.kernel_dim}, init_scale={self.init_scale}); raise l_max or give "
                             f"n_scales >= 1")
        self.num_scales = num_scales
        lr = kernel_args.get("lr", 0.001)
        decay_min = kernel_args.get("decay_min", 2)
        decay_max = kernel_args.get("decay_max", 2)

        self.kernel_list = nn.ParameterList()
        for _ in range(self.num_scales):
            if "randn" in mode:
                kernel = nn.Parameter(torch.randn(kernel_channels, self.h, self.kernel_dim))
            else:
                waves = [torch.cos(torch.linspace(0, 2 * i * math.pi, self.kernel_dim)).expand(kernel_channels, 1,
                                                                                              self.kernel_dim)
                         for i in range(self.h)]
                kernel = nn.Parameter(torch.cat(waves, dim=1)[:, torch.randperm(self.h), :])
            kernel._optim = {"lr": lr}
            self.kernel_list.append(kernel)

        if "learnable" in mode:
            self.decay = nn.Parameter(torch.rand(self.h) * (decay_max - decay_min) + decay_min)
            if "fixed" in mode:
                self.decay.requires_grad = False
            else:
                self.decay._optim = {"lr": lr}
            self.register_buffer("multiplier", torch.tensor(1.0))
        else:
            self.register_buffer("multiplier", torch.linspace(decay_min, decay_max, self.h).view(1, -1, 1))
        self.register_buffer("kernel_norm", torch.ones(kernel_channels, self.h, 1))
        self.register_buffer("kernel_norm_initialized", torch.tensor(0, dtype=torch.bool))

    def kernel(self) -> Tensor:
        """The unnormalized multi-scale kernel (C', H, Lk) before cropping to the input length."""
        mode = "nearest" if "nearest" in self.mode else "linear"
        n = self.num_scales
        parts = []
        if "sum" in self.mode:
            longest = self.kernel_dim * 2 ** (n - 1 + self.init_scale)
            for i in range(n):
                up = F.interpolate(self.kernel_list[i], scale_factor=2 ** (i + self.init_scale), mode=mode)
                parts.append(F.pad(up, (0, longest - self.kernel_dim * 2 ** (i + self.init_scale)))
                             * self.multiplier ** (n - i - 1))
            k = sum(parts)
        else:
            for i in range(n):
                up = F.interpolate(self.kernel_list[i], scale_factor=2 ** (max(0, i - 1) + self.init_scale),
                                   mode=mode)
                parts.append(up * self.multiplier ** (n - i - 1))
            k = torch.cat(parts, dim=-1)
        if "learnable" in self.mode:
            t = torch.arange(k.size(-1), device=k.device)
            k = k * torch.exp(-self.decay.view(1, -1, 1) * torch.log(t + 1).view(1, 1, -1))
        return k

    def forward(self, u: Tensor, return_kernel: bool = False) -> Tuple[Tensor, Optional[Tensor]]:
        if u.dim() != 3:
            raise ValueError(f"expected a 3-D input ({'B, H, L' if self.transposed else 'B, L, H'}), got shape "
                             f"{tuple(u.shape)}")
        if not self.transposed:
            u = u.transpose(-1, -2)
        if u.shape[1] != self.h:
            raise ValueError(f"expected {self.h} channels (d_model), got input of shape {tuple(u.shape)}")
        length = u.size(-1)
        k = self.kernel()
        if not bool(self.kernel_norm_initialized):
            with torch.no_grad():
                self.kernel_norm = k.norm(dim=-1, keepdim=True).detach()
                self.kernel_norm_initialized.fill_(True)
        if k.size(-1) > length:
            k = k[..., :length]
        elif k.size(-1) < length:
            k = F.pad(k, (0, length - k.size(-1)))
        k = k / self.kernel_norm
        if self.bidirectional:
            k0, k1 = k[: self.channels], k[self.channels:]
            k = F.pad(k0, (0, length)) + F.pad(k1.flip(-1), (length, 0))

        y = _fft_conv1d(u, k, self.D)
        y = y.reshape(y.shape[0], -1, length)
        if not self.linear:
            y = self.dropout(self.activation(y))
        if not self.transposed:
            y = y.transpose(-1, -2)
        if not self.linear:
            y = self.output_linear(self.norm(y))
        return y, (k if return_kernel else None)

    @property
    def d_state(self) -> int:
        return self.h * self.n

    @property
    def d_output(self) -> int:
        return self.h


SGConv = GConv


def _fft_depthwise_conv2d_same(x: Tensor, kernel: Tensor) -> Tensor:
    """``F.conv2d(x, kernel[:, None], padding="same", groups=C)`` computed with FFTs.

    ``out[n, c, y, x] = sum_{i, j} kernel[c, i, j] * x[n, c, y + i - (kh - 1) // 2, x + j - (kw - 1) // 2]`` with
    zeros outside the input (cross-correlation, PyTorch's "same" placement for even sizes). x: (N, C, H, W),
    kernel: (C, kh, kw) -> (N, C, H, W) in x's dtype and memory format. The linear convolution of x with the
    flipped kernel is taken at size (H + kh - 1, W + kw - 1), so nothing wraps around; float32 (float64 for
    float64 inputs) with autocast off.
    """
    h, w = x.shape[-2:]
    kh, kw = kernel.shape[-2:]
    nh, nw = h + kh - 1, w + kw - 1
    dt = _work_dtype(x, kernel)
    with torch.autocast(x.device.type, enabled=False):
        x_f = torch.fft.rfft2(x.to(dt), s=(nh, nw))
        k_f = torch.fft.rfft2(kernel.to(dt).flip(-2, -1), s=(nh, nw))
        full = torch.fft.irfft2(x_f * k_f, s=(nh, nw))
    top, left = kh - 1 - (kh - 1) // 2, kw - 1 - (kw - 1) // 2
    out = full[..., top: top + h, left: left + w].to(x.dtype)
    if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        out = out.contiguous(memory_format=torch.channels_last)
    else:
        out = out.contiguous()
    return out


class HyperKernelConv2d(nn.Module):
    """Global depthwise conv with an implicit hyper-kernel as large as the feature map (HyperZ.Z.W-style).

    For an input (N, C, H, W) the kernel has one (H, W) plane per channel. Tap (i, j) sits at coordinates
    ``(u_i, v_j)`` with ``u = linspace(-1, 1, H)``, ``v = linspace(-1, 1, W)``; its features are
    ``phi = [sin(w u_i), cos(w u_i), sin(w v_j), cos(w v_j)]`` for the frequencies ``w = pi * 2**f``,
    ``f = 0 .. num_frequencies - 1`` (length ``4 * num_frequencies``). The coordinate MLP ``kernel_net``
    (Linear(4F, hidden_dim) -> GELU -> Linear(hidden_dim, channels)) maps each tap's features to the C kernel
    values, and the kernel is scaled by ``1 / (H * W)`` (a Riemann sum of a continuous kernel, so the response
    to smooth inputs does not grow with the resolution):

        K[c, i, j] = kernel_net(phi(u_i, v_j))[c] / (H * W)
        y[n, c] = F.conv2d(x, K[:, None], padding="same", groups=C)[n, c] + bias[c]

    i.e. each output pixel mixes the whole (H, W) window centred on it (offsets ``-(H-1)//2 .. H//2``), with
    zeros outside the map. The convolution runs with FFTs (:func:`_fft_depthwise_conv2d_same`); the kernel is
    generated anew for each input size, so any resolution works. Parameters: ``kernel_net.0.*``,
    ``kernel_net.2.*``, ``bias`` (C,) (zeros at init). x: (N, channels, H, W) -> (N, channels, H, W).
    """

    def __init__(self, channels: int, hidden_dim: int = 32, num_frequencies: int = 4, bias: bool = True):
        super().__init__()
        for name, value in (("channels", channels), ("hidden_dim", hidden_dim),
                            ("num_frequencies", num_frequencies)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.channels = channels
        self.hidden_dim = hidden_dim
        self.num_frequencies = num_frequencies
        self.kernel_net = nn.Sequential(nn.Linear(4 * num_frequencies, hidden_dim), nn.GELU(),
                                        nn.Linear(hidden_dim, channels))
        self.register_parameter("bias", nn.Parameter(torch.zeros(channels)) if bias else None)
        self.register_buffer("frequencies", math.pi * 2.0 ** torch.arange(num_frequencies), persistent=False)

    def positional_features(self, height: int, width: int) -> Tensor:
        """phi: (height, width, 4 * num_frequencies) sin/cos features of the tap coordinates."""
        freq = self.frequencies
        u = torch.linspace(-1.0, 1.0, height, device=freq.device, dtype=freq.dtype)[:, None] * freq
        v = torch.linspace(-1.0, 1.0, width, device=freq.device, dtype=freq.dtype)[:, None] * freq
        fu = torch.cat((u.sin(), u.cos()), dim=-1)[:, None, :].expand(height, width, -1)
        fv = torch.cat((v.sin(), v.cos()), dim=-1)[None, :, :].expand(height, width, -1)
        return torch.cat((fu, fv), dim=-1)

    def kernel(self, height: int, width: int) -> Tensor:
        """The generated kernel K: (channels, height, width)."""
        phi = self.positional_features(height, width).to(self.kernel_net[0].weight.dtype)
        return self.kernel_net(phi).permute(2, 0, 1) / (height * width)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.channels:
            raise ValueError(f"expected input (N, {self.channels}, H, W), got shape {tuple(x.shape)}")
        y = _fft_depthwise_conv2d_same(x, self.kernel(x.shape[2], x.shape[3]))
        if self.bias is not None:
            y = y + self.bias.to(y.dtype)[:, None, None]
        return y

    def extra_repr(self) -> str:
        return (f"{self.channels}, hidden_dim={self.hidden_dim}, num_frequencies={self.num_frequencies}, "
                f"bias={self.bias is not None}")
