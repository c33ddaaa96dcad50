"""Functional ops. Each op folder holds its plain-PyTorch reference, fast kernels and one dispatch."""
from .conv1d import long_conv1d, short_conv1d
from .depthwise2d import depthwise_conv2d, depthwise_conv2d_reference

__all__ = ["depthwise_conv2d", "depthwise_conv2d_reference", "long_conv1d", "short_conv1d"]
