"""UniRepLKNet blocks: the Dilated Reparam Block and the UniRepLKNet block (with its SE and GRN helpers).

Paper: "UniRepLKNet: A Universal Perception Large-Kernel ConvNet for Audio, Video, Point Cloud, Time-Series
and Image Recognition" (Ding et al., CVPR 2024). Official code: https://github.com/AILab-CVC/UniRepLKNet
(``unireplknet.py``).

Submodule and parameter names follow the official code, so official checkpoints (training-time and
``deploy=True`` ones) load with ``load_state_dict`` unchanged. Every depthwise conv is a
:class:`lkconv.nn.DepthwiseConv2d`; the official ``attempt_use_lk_impl`` switch (try the iGEMM large-kernel
implementation) selects lkconv's dispatch (True, ``algorithm="auto"``) or PyTorch's own conv (False,
``algorithm="torch"``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as checkpoint
from torch import nn

from ..reparam import dilate_kernel, fuse_bn, pad_kernel
from .conv import DepthwiseConv2d
from .layers import check_positive_int, make_drop_path

__all__ = ["DilatedReparamBlock", "UniRepLKNetBlock", "SEBlock", "GRNwithNHWC", "NCHWtoNHWC", "NHWCtoNCHW"]

Tensor = torch.Tensor

# Official branch tables: large kernel size -> (branch kernel sizes, branch dilation rates).
DILATED_BRANCHES = {
    5: ((3, 3), (1, 2)),
    7: ((5, 3, 3), (1, 2, 3)),
    9: ((5, 5, 3, 3), (1, 2, 3, 4)),
    11: ((5, 5, 3, 3, 3), (1, 2, 3, 4, 5)),
    13: ((5, 7, 3, 3, 3), (1, 2, 3, 4, 5)),
    15: ((5, 7, 3, 3, 3), (1, 2, 3, 5, 7)),
    17: ((5, 9, 3, 3, 3), (1, 2, 4, 5, 7)),
}


def _algorithm(attempt_use_lk_impl: bool) -> str:
    return "auto" if attempt_use_lk_impl else "torch"


def _dwconv(channels: int, kernel_size: int, dilation: int, bias: bool, algorithm: str) -> DepthwiseConv2d:
    """Depthwise ``kernel_size`` conv, stride 1, padding keeping the size (dilated extent // 2)."""
    padding = (dilation * (kernel_size - 1) + 1) // 2
    return DepthwiseConv2d(channels, channels, kernel_size, 1, padding, dilation, channels, bias,
                           algorithm=algorithm)


def _bn(channels: int, use_sync_bn: bool) -> nn.Module:
    return nn.SyncBatchNorm(channels) if use_sync_bn else nn.BatchNorm2d(channels)


class GRNwithNHWC(nn.Module):
    """Global Response Normalization (ConvNeXt V2) on channels-last input.

    x: (N, H, W, C) -> same; ``(gamma * Nx + 1) * x (+ beta)`` with ``Nx = ||x||_HW / (mean_C ||x||_HW + 1e-6)``.
    gamma, beta: (1, 1, 1, C).
    """

    def __init__(self, dim: int, use_bias: bool = True):
        super().__init__()
        self.use_bias = use_bias
        self.gamma = nn.Parameter(torch.zeros(1, 1, 1, dim))
        if self.use_bias:
            self.beta = nn.Parameter(torch.zeros(1, 1, 1, dim))

    def forward(self, x: Tensor) -> Tensor:
        gx = torch.linalg.vector_norm(x, ord=2, dim=(1, 2), keepdim=True)
        nx = gx / (gx.mean(dim=-1, keepdim=True) + 1e-6)
        out = (self.gamma * nx + 1) * x
        return out + self.beta if self.use_bias else out


class NCHWtoNHWC(nn.Module):
    """x: (N, C, H, W) -> (N, H, W, C) (a permuted view)."""

    def forward(self, x: Tensor) -> Tensor:
        return x.permute(0, 2, 3, 1)


class NHWCtoNCHW(nn.Module):
    """x: (N, H, W, C) -> (N, C, H, W) (a permuted view)."""

    def forward(self, x: Tensor) -> Tensor:
        return x.permute(0, 3, 1, 2)


class SEBlock(nn.Module):
    """Squeeze-and-Excitation: ``x * sigmoid(up(relu(down(avgpool(x)))))`` with 1x1 convs ``down``, ``up``.

    x: (N, input_channels, H, W) -> same.
    """

    def __init__(self, input_channels: int, internal_neurons: int):
        super().__init__()
        self.down = nn.Conv2d(input_channels, internal_neurons, kernel_size=1, stride=1, bias=True)
        self.up = nn.Conv2d(internal_neurons, input_channels, kernel_size=1, stride=1, bias=True)
        self.input_channels = input_channels
        self.nonlinear = nn.ReLU(inplace=True)

    def forward(self, inputs: Tensor) -> Tensor:
        x = F.adaptive_avg_pool2d(inputs, output_size=(1, 1))
        x = torch.sigmoid(self.up(self.nonlinear(self.down(x))))
        return inputs * x.view(-1, self.input_channels, 1, 1)


class DilatedReparamBlock(nn.Module):
    """Dilated Reparam Block: a large depthwise conv plus parallel dilated small depthwise convs, each + BN.

    ``lk_origin`` (K x K depthwise, padding K // 2) -> ``origin_bn``, plus for each (k, r) in the official table
    for K (:data:`DILATED_BRANCHES`, K in 5..17 odd) ``dil_conv_k{k}_{r}`` (k x k, dilation r) ->
    ``dil_bn_k{k}_{r}``; outputs summed. With ``deploy=True`` (or after :meth:`merge_dilated_branches`) the
    block is the single biased conv ``lk_origin``. x: (N, channels, H, W) -> same shape.
    """

    def __init__(self, channels: int, kernel_size: int, deploy: bool = False, use_sync_bn: bool = False,
                 attempt_use_lk_impl: bool = True):
        super().__init__()
        check_positive_int("channels", channels)
        if not isinstance(kernel_size, int) or isinstance(kernel_size, bool) or kernel_size not in DILATED_BRANCHES:
            raise ValueError(f"kernel_size must be one of {sorted(DILATED_BRANCHES)} (the Dilated Reparam Block's "
                             f"branch tables), got {kernel_size!r}")
        self.attempt_use_lk_impl = attempt_use_lk_impl
        algorithm = _algorithm(attempt_use_lk_impl)
        self.lk_origin = _dwconv(channels, kernel_size, 1, deploy, algorithm)
        kernel_sizes, dilates = DILATED_BRANCHES[kernel_size]
        self.kernel_sizes, self.dilates = list(kernel_sizes), list(dilates)
        if not deploy:
            self.origin_bn = _bn(channels, use_sync_bn)
            for k, r in zip(self.kernel_sizes, self.dilates):
                self.add_module(f"dil_conv_k{k}_{r}", _dwconv(channels, k, r, False, algorithm))
                self.add_module(f"dil_bn_k{k}_{r}", _bn(channels, use_sync_bn))

    def forward(self, x: Tensor) -> Tensor:
        if not hasattr(self, "origin_bn"):  # deploy form
            return self.lk_origin(x)
        out = self.origin_bn(self.lk_origin(x))
        for k, r in zip(self.kernel_sizes, self.dilates):
            conv = getattr(self, f"dil_conv_k{k}_{r}")
            bn = getattr(self, f"dil_bn_k{k}_{r}")
            out = out + bn(conv(x))
        return out

    @torch.no_grad()
    def merge_dilated_branches(self) -> None:
        """Fold every BN and dilated branch into one biased K x K ``lk_origin``, in place (use in eval mode)."""
        if not hasattr(self, "origin_bn"):
            return
        lk = self.lk_origin
        size = lk.kernel_size[0]
        kernel, bias = fuse_bn(lk.weight, lk.bias, self.origin_bn)
        for k, r in zip(self.kernel_sizes, self.dilates):
            conv = getattr(self, f"dil_conv_k{k}_{r}")
            branch_k, branch_b = fuse_bn(conv.weight, conv.bias, getattr(self, f"dil_bn_k{k}_{r}"))
            kernel = kernel + pad_kernel(dilate_kernel(branch_k, r), size, size)
            bias = bias + branch_b
        merged = _dwconv(lk.in_channels, size, 1, True, getattr(lk, "algorithm", "auto"))
        merged.to(device=kernel.device, dtype=kernel.dtype)
        merged.weight.copy_(kernel)
        merged.bias.copy_(bias)
        self.lk_origin = merged
        del self.origin_bn
        for k, r in zip(self.kernel_sizes, self.dilates):
            delattr(self, f"dil_conv_k{k}_{r}")
            delattr(self, f"dil_bn_k{k}_{r}")

    def reparameterize(self) -> None:
        """Same as :meth:`merge_dilated_branches` (the name :func:`lkconv.reparameterize` looks for)."""
        self.merge_dilated_branches()


class UniRepLKNetBlock(nn.Module):
    """UniRepLKNet block: ``x + drop_path(gamma * pwconv2(act(pwconv1(se(norm(dwconv(x)))))))``.

    ``dwconv``: :class:`DilatedReparamBlock` for kernel_size >= 7, a plain depthwise conv for 3 or 5, identity
    for 0; ``norm``: BatchNorm2d; ``se``: :class:`SEBlock` (dim // 4 hidden); ``pwconv1``: (NCHWtoNHWC,
    Linear dim -> ffn_factor * dim); ``act``: (GELU, :class:`GRNwithNHWC`); ``pwconv2``: (Linear, no bias,
    NHWCtoNCHW, BatchNorm2d); ``gamma``: (dim,) layer scale. ``deploy=True`` builds the official inference
    layout (what :meth:`reparameterize` turns a trained block into). x: (N, dim, H, W) -> same shape.
    """

    def __init__(self, dim: int, kernel_size: int, drop_path: float = 0.0, layer_scale_init_value: float = 1e-6,
                 deploy: bool = False, attempt_use_lk_impl: bool = True, with_cp: bool = False,
                 use_sync_bn: bool = False, ffn_factor: float = 4):
        super().__init__()
        check_positive_int("dim", dim)
        if dim < 4:
            raise ValueError(f"dim must be >= 4 (the SE block has dim // 4 hidden channels), got {dim}")
        large = sorted(k for k in DILATED_BRANCHES if k >= 7)
        if not isinstance(kernel_size, int) or isinstance(kernel_size, bool) or kernel_size not in (0, 3, 5, *large):
            raise ValueError(f"kernel_size must be 0 (no conv), 3, 5 or one of {large} (Dilated Reparam Block), "
                             f"got {kernel_size!r}")
        ffn_dim = int(ffn_factor * dim)
        if ffn_dim < 1:
            raise ValueError(f"ffn_factor * dim must be >= 1, got ffn_factor={ffn_factor!r}")
        self.with_cp = with_cp
        if kernel_size == 0:
            self.dwconv = nn.Identity()
        elif kernel_size >= 7:
            self.dwconv = DilatedReparamBlock(dim, kernel_size, deploy=deploy, use_sync_bn=use_sync_bn,
                                              attempt_use_lk_impl=attempt_use_lk_impl)
        else:
            self.dwconv = _dwconv(dim, kernel_size, 1, deploy, _algorithm(attempt_use_lk_impl))
        self.norm = nn.Identity() if deploy or kernel_size == 0 else _bn(dim, use_sync_bn)
        self.se = SEBlock(dim, dim // 4)
        self.pwconv1 = nn.Sequential(NCHWtoNHWC(), nn.Linear(dim, ffn_dim))
        self.act = nn.Sequential(nn.GELU(), GRNwithNHWC(ffn_dim, use_bias=not deploy))
        if deploy:
            self.pwconv2 = nn.Sequential(nn.Linear(ffn_dim, dim), NHWCtoNCHW())
        else:
            self.pwconv2 = nn.Sequential(nn.Linear(ffn_dim, dim, bias=False), NHWCtoNCHW(), _bn(dim, use_sync_bn))
        if not deploy and layer_scale_init_value is not None and layer_scale_init_value > 0:
            self.gamma = nn.Parameter(layer_scale_init_value * torch.ones(dim))
        else:
            self.gamma = None
        self.drop_path = make_drop_path(drop_path)

    def compute_residual(self, x: Tensor) -> Tensor:
        """The residual branch: (N, dim, H, W) -> (N, dim, H, W)."""
        y = self.se(self.norm(self.dwconv(x)))
        y = self.pwconv2(self.act(self.pwconv1(y)))
        if self.gamma is not None:
            y = self.gamma.view(1, -1, 1, 1) * y
        return self.drop_path(y)

    def forward(self, inputs: Tensor) -> Tensor:
        def residual_block(x):
            return x + self.compute_residual(x)

        if self.with_cp and inputs.requires_grad:
            return checkpoint.checkpoint(residual_block, inputs, use_reentrant=False)
        return residual_block(inputs)

    @torch.no_grad()
    def reparameterize(self) -> None:
        """Turn the block into its official deploy layout, in place (use in eval mode).

        Merges the dilated branches, folds ``norm`` into the depthwise conv, and folds the GRN bias, the
        BatchNorm of ``pwconv2`` and the layer scale ``gamma`` into a biased ``pwconv2[0]`` Linear.
        """
        if hasattr(self.dwconv, "merge_dilated_branches"):
            self.dwconv.merge_dilated_branches()
        if hasattr(self.norm, "running_var"):
            conv = self.dwconv.lk_origin if isinstance(self.dwconv, DilatedReparamBlock) else self.dwconv
            kernel, bias = fuse_bn(conv.weight, conv.bias, self.norm)
            fused = _dwconv(conv.in_channels, conv.kernel_size[0], 1, True, getattr(conv, "algorithm", "auto"))
            fused.to(device=kernel.device, dtype=kernel.dtype)
            fused.weight.copy_(kernel)
            fused.bias.copy_(bias)
            if isinstance(self.dwconv, DilatedReparamBlock):
                self.dwconv.lk_origin = fused
            else:
                self.dwconv = fused
            self.norm = nn.Identity()
        grn = self.act[1]
        if grn.use_bias and len(self.pwconv2) == 3:
            scale = self.gamma
            linear, bn = self.pwconv2[0], self.pwconv2[2]
            # W (gx + beta) + b = W gx + (W beta + b); then BN and the layer scale act per output channel.
            linear_bias = linear.weight @ grn.beta.reshape(-1)
            if linear.bias is not None:
                linear_bias = linear_bias + linear.bias
            weight, bias = fuse_bn(linear.weight, linear_bias, bn)
            if scale is not None:
                weight, bias = weight * scale.reshape(-1, 1), bias * scale
            new_linear = nn.Linear(linear.in_features, linear.out_features, bias=True,
                                   device=weight.device, dtype=weight.dtype)
            new_linear.weight.copy_(weight)
            new_linear.bias.copy_(bias)
            del grn.beta
            grn.use_bias = False
            self.pwconv2 = nn.Sequential(new_linear, self.pwconv2[1])
            self.gamma = None
