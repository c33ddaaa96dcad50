"""lkconv: fast, verified large-kernel depthwise convolutions for PyTorch, and the blocks built on them."""
from .ops import depthwise_conv2d, depthwise_conv2d_reference, long_conv1d, short_conv1d
from .nn.conv import convert
from .reparam import reparameterize

__version__ = "0.1.0"

__all__ = ["depthwise_conv2d", "depthwise_conv2d_reference", "long_conv1d", "short_conv1d", "convert", "reparameterize", "__version__"]
