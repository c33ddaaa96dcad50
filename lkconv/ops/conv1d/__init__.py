"""1D depthwise convolutions: long (FFT, any length) and short (Triton, any width)."""
from .long import long_conv1d
from .reference import long_conv1d_reference, short_conv1d_reference
from .short import short_conv1d

__all__ = ["long_conv1d", "short_conv1d", "long_conv1d_reference", "short_conv1d_reference"]
