"""AdaptiveFrequencyFilter against a plain-PyTorch rendering of the official AFNO2D_channelfirst
(microsoft/TokenMixers, Adaptive Frequency Filters/affnet/modules/aff_block.py)."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lkconv.nn.affnet import AdaptiveFrequencyFilter
from lkconv.testing import rel_error


class RefAFNO2DChannelFirst(nn.Module):
    """The official forward, einsum by einsum (sparsity_threshold and activation passed in instead of opts)."""

    def __init__(self, hidden_size, num_blocks=8, sparsity_threshold=0.01, hidden_size_factor=1, act=nn.ReLU):
        super().__init__()
        self.hidden_size = hidden_size
        self.sparsity_threshold = sparsity_threshold
        self.num_blocks = num_blocks
        self.block_size = hidden_size // num_blocks
        f = hidden_size_factor
        self.w1 = nn.Parameter(0.02 * torch.randn(2, num_blocks, self.block_size, self.block_size * f))
        self.b1 = nn.Parameter(0.02 * torch.randn(2, num_blocks, self.block_size * f))
        self.w2 = nn.Parameter(0.02 * torch.randn(2, num_blocks, self.block_size * f, self.block_size))
        self.b2 = nn.Parameter(0.02 * torch.randn(2, num_blocks, self.block_size))
        self.act = act()
        self.act2 = act()

    def forward(self, x):
        bias = x
        dtype = x.dtype
        x = x.float()
        B, C, H, W = x.shape
        x = torch.fft.rfft2(x, dim=(2, 3), norm="ortho")
        origin_ffted = x
        x = x.reshape(B, self.num_blocks, self.block_size, x.shape[2], x.shape[3])
        o1_real = self.act(
            torch.einsum("bkihw,kio->bkohw", x.real, self.w1[0])
            - torch.einsum("bkihw,kio->bkohw", x.imag, self.w1[1])
            + self.b1[0, :, :, None, None]
        )
        o1_imag = self.act2(
            torch.einsum("bkihw,kio->bkohw", x.imag, self.w1[0])
            + torch.einsum("bkihw,kio->bkohw", x.real, self.w1[1])
            + self.b1[1, :, :, None, None]
        )
        o2_real = (
            torch.einsum("bkihw,kio->bkohw", o1_real, self.w2[0])
            - torch.einsum("bkihw,kio->bkohw", o1_imag, self.w2[1])
            + self.b2[0, :, :, None, None]
        )
        o2_imag = (
            torch.einsum("bkihw,kio->bkohw", o1_imag, self.w2[0])
            + torch.einsum("bkihw,kio->bkohw", o1_real, self.w2[1])
            + self.b2[1, :, :, None, None]
        )
        x = torch.stack([o2_real, o2_imag], dim=-1)
        x = F.softshrink(x, lambd=self.sparsity_threshold)
        x = torch.view_as_complex(x)
        x = x.reshape(B, C, x.shape[3], x.shape[4])
        x = x * origin_ffted
        x = torch.fft.irfft2(x, s=(H, W), dim=(2, 3), norm="ortho")
        return x.type(dtype) + bias


def _randomize(module, std=0.1):
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0, std)
    return module


def _filter_error(a, b, whole):
    a, b, whole = (t.detach().double() for t in (a, b, whole))
    return ((a - b).norm() / torch.maximum(b.norm(), 1e-2 * whole.norm())).item()


def _compare(block, ref, x, tol=1e-5):
    ref.load_state_dict(block.state_dict(), strict=True)
    assert set(block.state_dict()) == set(ref.state_dict())
    x1 = x.clone().requires_grad_(True)
    x2 = x.clone().requires_grad_(True)
    y1, y2 = block(x1), ref(x2)
    assert y1.shape == y2.shape == x.shape and y1.dtype == x.dtype
    assert rel_error(y1, y2) < tol, f"output rel error {rel_error(y1, y2)}"
    # the filtered part alone (the residual would hide errors in it); softshrink leaves coefficients just above
    # the threshold with tiny values whose float32 rounding is large relative to themselves, so the error is
    # measured against the filtered part or 1% of the input, whichever is larger
    err = _filter_error(y1 - x, y2 - x, x)
    assert err < tol, f"filter rel error {err}"
    g = torch.randn_like(y2)
    y1.backward(g)
    y2.backward(g)
    err = _filter_error(x1.grad - g, x2.grad - g, g)
    assert err < tol, f"input grad (filter part) rel error {err}"
    ref_params = dict(ref.named_parameters())
    assert set(ref_params) == {n for n, _ in block.named_parameters()}
    for name, p in block.named_parameters():
        assert p.grad is not None, name
        err = rel_error(p.grad, ref_params[name].grad)
        # parameter gradients are float32 reductions over the whole batch and spectrum: allow their rounding
        assert err < 10 * tol, f"grad of {name}: rel error {err}"


# ----------------------------------------------------------------------------------------------------------
# (1) Same function, names and gradients as the official definition
# ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kw, shape",
    [
        (dict(hidden_size=16), (2, 16, 8, 8)),  # 8 blocks of 2
        (dict(hidden_size=12, num_blocks=3, sparsity_threshold=0.05), (2, 12, 7, 9)),  # odd W
        (dict(hidden_size=8, num_blocks=2, hidden_size_factor=2), (1, 8, 6, 5)),
        (dict(hidden_size=6, num_blocks=1, sparsity_threshold=0.0), (2, 6, 5, 4)),
        (dict(hidden_size=8, num_blocks=4, act=nn.GELU), (2, 8, 6, 6)),
        (dict(hidden_size=8, num_blocks=4, act=nn.PReLU), (2, 8, 6, 7)),  # activations with parameters
    ],
)
@pytest.mark.parametrize("init_std", [None, 0.1])
def test_matches_official(kw, shape, init_std):
    ref_kw = dict(kw)
    act = ref_kw.pop("act", nn.ReLU)
    block = AdaptiveFrequencyFilter(**ref_kw, act_layer=act)
    if init_std is not None:
        _randomize(block, init_std)
    ref = RefAFNO2DChannelFirst(**ref_kw, act=act)
    _compare(block, ref, torch.randn(shape))


def test_softshrink_is_active():
    """With the official init the mask is sparse: the threshold must matter for the comparison to mean much."""
    block = AdaptiveFrequencyFilter(16)
    spec = torch.fft.rfft2(torch.randn(2, 16, 8, 8), norm="ortho")
    mask = block.spectral_mask(spec)
    zeros = (mask.real == 0).float().mean().item()
    assert 0.05 < zeros < 0.95, zeros
    block.sparsity_threshold = 0.0
    assert (block.spectral_mask(spec).real == 0).float().mean().item() < zeros


def test_hidden_size_factor_shapes():
    block = AdaptiveFrequencyFilter(12, num_blocks=3, hidden_size_factor=2)
    assert block.w1.shape == (2, 3, 4, 8) and block.b1.shape == (2, 3, 8)
    assert block.w2.shape == (2, 3, 8, 4) and block.b2.shape == (2, 3, 4)
    assert block.hard_thresholding_fraction == 1


# ----------------------------------------------------------------------------------------------------------
# (3) channels_last, (4) bf16 autocast / bf16 input
# ----------------------------------------------------------------------------------------------------------
def test_channels_last():
    block = _randomize(AdaptiveFrequencyFilter(16, 4))
    x = torch.randn(2, 16, 9, 8)
    y = block(x)
    y_cl = block(x.contiguous(memory_format=torch.channels_last))
    assert rel_error(y_cl - x, y - x) < 1e-5


def test_bf16_autocast_keeps_spectral_part_in_fp32():
    block = _randomize(AdaptiveFrequencyFilter(16, 4))
    ref = RefAFNO2DChannelFirst(16, 4)
    ref.load_state_dict(block.state_dict())
    x = torch.randn(2, 16, 8, 8, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = block(x)
    assert y.dtype == torch.float32
    y_ref = ref(x)
    assert rel_error(y - x, y_ref - x) < 1e-5
    y.sum().backward()
    assert torch.isfinite(x.grad).all() and all(torch.isfinite(p.grad).all() for p in block.parameters())


def test_bf16_input():
    block = _randomize(AdaptiveFrequencyFilter(16, 4))
    x = torch.randn(2, 16, 8, 8)
    y = block(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y_bf = block(x.bfloat16())
    assert y_bf.dtype == torch.bfloat16
    assert rel_error(y_bf.float(), y) < 1e-2


# ----------------------------------------------------------------------------------------------------------
# (5) Bad configuration
# ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(hidden_size=10, num_blocks=4), "divisible by num_blocks"),
        (dict(hidden_size=0), "hidden_size"),
        (dict(hidden_size=8, num_blocks=0), "num_blocks"),
        (dict(hidden_size=8, hidden_size_factor=0), "hidden_size_factor"),
        (dict(hidden_size=8, sparsity_threshold=-0.1), "sparsity_threshold"),
    ],
)
def test_bad_configuration(kw, match):
    with pytest.raises(ValueError, match=match):
        AdaptiveFrequencyFilter(**kw)


def test_bad_input_channels():
    with pytest.raises(ValueError, match="expected input"):
        AdaptiveFrequencyFilter(16)(torch.randn(1, 8, 4, 4))
