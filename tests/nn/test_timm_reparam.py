"""timm's reparameterize_model finds lkconv's re-parameterizable blocks and keeps their outputs."""
import importlib

import pytest
import torch
from torch import nn

import lkconv
from lkconv import nn as lknn

from .helpers import randomize_bn

pytest.importorskip("timm")


def _timm_reparameterize_model():
    """timm's reparameterize_model (timm.models in recent releases, timm.utils in 0.9)."""
    for name in ("timm.models", "timm.models._manipulate", "timm.utils", "timm.utils.model"):
        try:
            fn = getattr(importlib.import_module(name), "reparameterize_model", None)
        except ImportError:
            continue
        if fn is not None:
            return fn
    pytest.skip("this timm has no reparameterize_model")


BLOCKS = [
    ("DilatedReparamBlock", lambda: lknn.DilatedReparamBlock(8, 13), 8),
    ("UniRepLKNetBlock", lambda: lknn.UniRepLKNetBlock(8, 7), 8),
    ("ReparamLargeKernelConv", lambda: lknn.ReparamLargeKernelConv(8, 8, 13, 1, 8, 5), 8),
    ("RepLKBlock", lambda: lknn.RepLKBlock(8, 16, 13, 5, 0.0), 8),
    ("SLaKLargeKernelConv", lambda: lknn.SLaKLargeKernelConv(8, 8, 13, 1, 8, 5, Decom=True), 8),
    ("FFNetRepVGGDW", lambda: lknn.FFNetRepVGGDW(8, 8, 7), 8),
    ("CFSRConvMod", lambda: lknn.CFSRConvMod(8, 9, 3), 8),
    ("OmniKernel", lambda: lknn.OmniKernel(8, 7), 8),
    ("SeparableLargeKernelConv", lambda: lknn.SeparableLargeKernelConv(8, 9, rank=2), 8),
    ("DSConv", lambda: lknn.DSConv(8, 12, 7), 8),
]


@pytest.mark.parametrize("name,make,channels", BLOCKS, ids=[b[0] for b in BLOCKS])
def test_timm_reparameterize_model_matches(name, make, channels):
    model = randomize_bn(nn.Sequential(make())).eval()
    x = torch.randn(2, channels, 15, 14)
    with torch.no_grad():
        ref = model(x)
        fused = _timm_reparameterize_model()(model)  # a deep copy, as timm does by default
        out = fused(x)
        ours = lkconv.reparameterize(model)(x)
    assert fused is not model
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
