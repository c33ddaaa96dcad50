"""DepthwiseConv2d is a drop-in nn.Conv2d; convert() swaps depthwise convs in place."""
import pytest
import torch
from torch import nn

import lkconv
from lkconv.nn import DepthwiseConv2d


def test_same_parameters_and_state_dict_as_conv2d():
    ref = nn.Conv2d(8, 16, (5, 3), stride=2, padding=(2, 1), dilation=1, groups=8, bias=True, padding_mode="reflect")
    mod = DepthwiseConv2d(8, 16, (5, 3), stride=2, padding=(2, 1), bias=True, padding_mode="reflect")
    assert isinstance(mod, nn.Conv2d)
    assert {k: v.shape for k, v in mod.state_dict().items()} == {k: v.shape for k, v in ref.state_dict().items()}
    mod.load_state_dict(ref.state_dict())
    x = torch.randn(2, 8, 13, 12)
    torch.testing.assert_close(mod(x), ref(x))


def test_rejects_non_depthwise_configuration():
    with pytest.raises(ValueError, match="groups == in_channels"):
        DepthwiseConv2d(8, 12, 3)
    with pytest.raises(ValueError, match="groups == in_channels"):
        DepthwiseConv2d(8, 8, 3, groups=2)


def test_convert_swaps_only_depthwise_convs_and_keeps_outputs():
    class Same(nn.Conv2d):  # a subclass with its own forward is left alone
        pass

    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.Conv2d(8, 8, 7, padding=3, groups=8),
        nn.BatchNorm2d(8),
        nn.Conv2d(8, 16, 5, padding="same", groups=8, bias=False),
        Same(16, 16, 3, padding=1, groups=16),
        nn.Conv2d(16, 16, 3, padding=1, groups=4),
    ).eval()
    x = torch.randn(2, 3, 16, 15)
    ref = model(x)
    params = [id(p) for p in model.parameters()]
    out = lkconv.convert(model)
    assert out is model
    kinds = [type(m) for m in model]
    assert kinds == [nn.Conv2d, DepthwiseConv2d, nn.BatchNorm2d, DepthwiseConv2d, Same, nn.Conv2d]
    assert [id(p) for p in model.parameters()] == params
    torch.testing.assert_close(model(x), ref, rtol=1e-5, atol=1e-5)


def test_convert_sets_algorithm_and_training_still_works():
    model = nn.Sequential(nn.Conv2d(4, 4, 5, padding=2, groups=4), nn.GELU())
    lkconv.convert(model, algorithm="torch")
    assert model[0].algorithm == "torch"
    x = torch.randn(2, 4, 9, 9)
    model(x).square().mean().backward()
    assert model[0].weight.grad is not None and model[0].bias.grad is not None


def test_channels_last_module(device):
    mod = DepthwiseConv2d(6, 6, 7, padding=3).to(device)
    x = torch.randn(2, 6, 12, 11, device=device).contiguous(memory_format=torch.channels_last)
    y = mod(x)
    assert y.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(y, nn.functional.conv2d(x, mod.weight, mod.bias, 1, 3, 1, 6), rtol=1e-5, atol=1e-5)
