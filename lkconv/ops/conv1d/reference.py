"""Plain-PyTorch 1D depthwise convolutions: the ground truth for :mod:`.long` and :mod:`.short`."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F


def long_conv1d_reference(x: torch.Tensor, k: torch.Tensor, D: Optional[torch.Tensor] = None,
                          causal: bool = True) -> torch.Tensor:
    """x (B, C, L), k (C, Lk) -> (B, C, L) by direct summation (``F.conv1d``).

    causal: y[t] = sum_s k[s] x[t - s]; otherwise the kernel is centred on tap c = (Lk - 1) // 2:
    y[t] = sum_s k[s] x[t + c - s]. D (C,) adds the skip term D * x.
    """
    c, lk = k.shape
    kf = k.flip(-1).unsqueeze(1)
    if causal:
        y = F.conv1d(F.pad(x, (lk - 1, 0)), kf, groups=c)
    else:
        ctr = (lk - 1) // 2
        y = F.conv1d(F.pad(x, (lk - 1 - ctr, ctr)), kf, groups=c)
    if D is not None:
        y = y + x * D.view(1, -1, 1)
    return y


def short_conv1d_reference(x: torch.Tensor, w: torch.Tensor, bias: Optional[torch.Tensor] = None,
                           causal: bool = True, activation: Optional[str] = None) -> torch.Tensor:
    """x (B, C, L), w (C, W) -> (B, C, L): y[t] = act(bias + sum_j w[j] x[t - pad + j]).

    pad = W - 1 when causal (the causal-conv1d convention), else (W - 1) // 2 ("same").
    """
    c, width = w.shape
    left = width - 1 if causal else (width - 1) // 2
    y = F.conv1d(F.pad(x, (left, width - 1 - left)), w.unsqueeze(1), bias, groups=c)
    if activation == "silu":
        y = F.silu(y)
    return y
