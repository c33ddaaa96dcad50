"""nn.Modules: the drop-in depthwise convolution and the large-kernel blocks of the papers."""
from .conv import DepthwiseConv2d, convert, is_depthwise

__all__ = ["DepthwiseConv2d", "convert", "is_depthwise"]
