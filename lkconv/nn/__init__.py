"""nn.Modules: the drop-in depthwise convolution and the large-kernel blocks of the papers.

One file per paper family; every depthwise convolution inside runs on ``lkconv.depthwise_conv2d``, and
blocks with training-time branches fold into one conv with ``reparameterize()`` (see ``lkconv.reparameterize``).
"""
from .conv import DepthwiseConv2d, convert, is_depthwise
from .affnet import AdaptiveFrequencyFilter
from .bevanet import CKS, SDLSKA, BEVANetDWConv, BEVANetPWConv
from .cfsr import CFSRBlock, CFSRConvMod, CFSREdgeFFN, CFSRReparamLargeKernelConv
from .dcls import ConstructKernel2d, Dcls2d
from .ffnet import FFBlock, FFNetChannelMixer, FFNetConv2dBN, FFNetRepVGGDW, FFNifiedAttention
from .inception import InceptionDWConv2d
from .lsnet import LKP, SKA, LSConv, LSNetConv2dBN
from .omni import FGM, FLKPE, LKPE, OmniKernel
from .replknet import ConvFFN, RepLKBlock, ReparamLargeKernelConv
from .separable import SeparableLargeKernelConv
from .sgconv import GConv, HyperKernelConv2d, SGConv
from .slak import SLaKBlock, SLaKLargeKernelConv
from .unireplknet import DilatedReparamBlock, GRNwithNHWC, NCHWtoNHWC, NHWCtoNCHW, SEBlock, UniRepLKNetBlock
from .van import LKA, VANAttention, VANBlock, VANDWConv, VANMlp
from .yolov13 import DSC3k, DSC3k2, DSBottleneck, DSConv

__all__ = [
    "DepthwiseConv2d", "convert", "is_depthwise",
    "AdaptiveFrequencyFilter",
    "CKS", "SDLSKA", "BEVANetDWConv", "BEVANetPWConv",
    "CFSRBlock", "CFSRConvMod", "CFSREdgeFFN", "CFSRReparamLargeKernelConv",
    "ConstructKernel2d", "Dcls2d",
    "FFBlock", "FFNetChannelMixer", "FFNetConv2dBN", "FFNetRepVGGDW", "FFNifiedAttention",
    "InceptionDWConv2d",
    "LKP", "SKA", "LSConv", "LSNetConv2dBN",
    "FGM", "FLKPE", "LKPE", "OmniKernel",
    "ConvFFN", "RepLKBlock", "ReparamLargeKernelConv",
    "SeparableLargeKernelConv",
    "GConv", "HyperKernelConv2d", "SGConv",
    "SLaKBlock", "SLaKLargeKernelConv",
    "DilatedReparamBlock", "GRNwithNHWC", "NCHWtoNHWC", "NHWCtoNCHW", "SEBlock", "UniRepLKNetBlock",
    "LKA", "VANAttention", "VANBlock", "VANDWConv", "VANMlp",
    "DSC3k", "DSC3k2", "DSBottleneck", "DSConv",
]
