"""Depthwise 2D convolution: reference, Triton direct kernels, one dispatch, a custom op with autograd."""
from .op import depthwise_conv2d
from .reference import depthwise_conv2d_reference

__all__ = ["depthwise_conv2d", "depthwise_conv2d_reference"]
