"""Functional ops. Each op folder holds its plain-PyTorch reference, fast kernels and one dispatch."""
from .depthwise2d import depthwise_conv2d, depthwise_conv2d_reference

__all__ = ["depthwise_conv2d", "depthwise_conv2d_reference"]
