"""DCLS kernel construction as torch.library custom ops with autograd.

Paper: "Dilated Convolution with Learnable Spacings" (Khalfaoui-Hassani, Pellegrini, Masquelier; ICLR 2023);
official code: https://github.com/K-H-Ismail/Dilated-Convolution-with-Learnable-Spacings-PyTorch
(DCLS/construct/modules.py, ``ConstructKernel2d``).

``dcls_construct_kernel2d`` runs the fused Triton kernels of :mod:`.triton_construct` on CUDA tensors (and on
CPU tensors under ``TRITON_INTERPRET=1``), otherwise the plain-PyTorch :mod:`.reference`.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from ..._triton import can_launch
from . import triton_construct
from .reference import (
    VERSIONS,
    dcls_construct_kernel2d_bwd_reference,
    dcls_construct_kernel2d_reference,
    interp_of,
)

__all__ = ["dcls_construct_kernel2d", "dcls_construct_kernel2d_reference", "VERSIONS"]


@torch.library.custom_op("lkconv::dcls_construct2d_fwd", mutates_args=())
def dcls_construct2d_fwd(
    weight: Tensor, P: Tensor, SIG: Optional[Tensor], dilated_kernel_size: List[int], version: str
) -> Tensor:
    """Dense kernel (O, I, D0, D1), contiguous, in weight's dtype."""
    if can_launch(weight):
        return triton_construct.construct2d_fwd(weight, P, SIG, dilated_kernel_size, version)
    return dcls_construct_kernel2d_reference(weight, P, SIG, dilated_kernel_size, version).to(weight.dtype).contiguous()


@dcls_construct2d_fwd.register_fake
def _(weight, P, SIG, dilated_kernel_size, version):
    return weight.new_empty((weight.shape[0], weight.shape[1], dilated_kernel_size[0], dilated_kernel_size[1]))


@torch.library.custom_op("lkconv::dcls_construct2d_bwd", mutates_args=())
def dcls_construct2d_bwd(
    grad_kernel: Tensor, weight: Tensor, P: Tensor, SIG: Optional[Tensor], dilated_kernel_size: List[int],
    version: str,
) -> Tuple[Tensor, Tensor, Tensor]:
    """(dweight, dP, dSIG); dSIG is an empty (0,) tensor for versions without SIG."""
    if can_launch(weight):
        dw, dp, dsig = triton_construct.construct2d_bwd(grad_kernel, weight, P, SIG, dilated_kernel_size, version)
    else:
        dw, dp, dsig = dcls_construct_kernel2d_bwd_reference(grad_kernel, weight, P, SIG, dilated_kernel_size, version)
    if dsig is None:
        dsig = P.new_empty((0,))
    return dw.contiguous(), dp.contiguous(), dsig.contiguous()


@dcls_construct2d_bwd.register_fake
def _(grad_kernel, weight, P, SIG, dilated_kernel_size, version):
    dsig = P.new_empty(SIG.shape) if interp_of(version).has_sig else P.new_empty((0,))
    return weight.new_empty(weight.shape), P.new_empty(P.shape), dsig


def _setup_context(ctx, inputs, output):
    weight, P, SIG, dilated_kernel_size, version = inputs
    ctx.save_for_backward(weight, P, SIG)
    ctx.args = (dilated_kernel_size, version)


def _backward(ctx, grad_kernel):
    weight, P, SIG = ctx.saved_tensors
    dw, dp, dsig = dcls_construct2d_bwd(grad_kernel, weight, P, SIG, *ctx.args)
    return (
        dw if ctx.needs_input_grad[0] else None,
        dp if ctx.needs_input_grad[1] else None,
        dsig if SIG is not None and ctx.needs_input_grad[2] else None,
        None,
        None,
    )


dcls_construct2d_fwd.register_autograd(_backward, setup_context=_setup_context)


def _pair(value, name: str) -> Tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, value)
    if (
        not isinstance(value, (tuple, list, torch.Size)) or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    if min(value) < 1:
        raise ValueError(f"{name} must be >= 1, got {value!r}")
    return int(value[0]), int(value[1])


def check_construct_args(weight: Tensor, P: Tensor, SIG: Optional[Tensor], dilated_kernel_size, version: str):
    """Validate the arguments of :func:`dcls_construct_kernel2d`; return the (D0, D1) pair."""
    it = interp_of(version)
    dks = _pair(dilated_kernel_size, "dilated_kernel_size")
    for name, t in (("weight", weight), ("P", P), ("SIG", SIG)):
        if t is None:
            continue
        if not isinstance(t, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dtype not in triton_construct.SUPPORTED_DTYPES:
            raise TypeError(f"{name} dtype must be float32/float16/bfloat16/float64, got {t.dtype}")
        if t.device != weight.device:
            raise ValueError(f"{name} is on {t.device} but weight is on {weight.device}")
    if weight.dim() != 3:
        raise ValueError(
            f"weight must be 3-D (out_channels, in_channels // groups, kernel_count), got {tuple(weight.shape)}"
        )
    if P.shape != (2,) + tuple(weight.shape):
        raise ValueError(f"P must have shape {(2,) + tuple(weight.shape)} (2, *weight.shape), got {tuple(P.shape)}")
    if it.has_sig:
        if SIG is None or SIG.shape != P.shape:
            got = None if SIG is None else tuple(SIG.shape)
            raise ValueError(f"version {version!r} needs SIG of shape {tuple(P.shape)} (like P), got {got}")
    elif SIG is not None:
        raise ValueError(f"version {version!r} takes no SIG (only 'gauss' and 'max' do); pass SIG=None")
    if P.dtype != weight.dtype or (SIG is not None and SIG.dtype != weight.dtype):
        raise TypeError(f"weight, P and SIG must share one dtype, got {weight.dtype}, {P.dtype}, "
                        f"{None if SIG is None else SIG.dtype}")
    return dks


def dcls_construct_kernel2d(
    weight: Tensor,
    P: Tensor,
    SIG: Optional[Tensor],
    dilated_kernel_size: Union[int, Sequence[int]],
    version: str = "gauss",
) -> Tensor:
    """Build the dense DCLS kernel from weights at learnable positions (official ``ConstructKernel2d``).

    weight: (O, I, K) with I = in_channels // groups and K = kernel_count; P: (2, O, I, K) positions (offset
    by ``dilated_kernel_size // 2``); SIG: (2, O, I, K) widths for ``version`` "gauss" and "max", None for
    "v1" and "v0". ``dilated_kernel_size``: int or (D0, D1). Returns (O, I, D0, D1) in weight's dtype
    (float32 accumulation; float64 for float64), differentiable in weight, P and SIG.
    See :mod:`lkconv.ops.dcls.reference` for the exact formulas of each version.
    """
    if not isinstance(version, str) or version not in VERSIONS:
        raise ValueError(f"version must be one of {VERSIONS}, got {version!r}")
    dks = check_construct_args(weight, P, SIG, dilated_kernel_size, version)
    return dcls_construct2d_fwd(weight, P, SIG, list(dks), version)
