"""The implicit-GEMM (Toeplitz, tensor-core) algorithm against the float64 reference in every direction."""
import pytest
import torch

from lkconv.tools import verify

from .helpers import assert_verified

CASES = [
    verify.Case(2, 3, 9, 11, 3, 3, padding=1),
    verify.Case(1, 2, 7, 6, 5, 4, padding="same"),
    verify.Case(2, 3, 9, 11, 3, 5, padding=(1, 2), dilation=(2, 1), mult=2, bias=False),
    verify.Case(1, 2, 12, 13, 7, 7, padding=3, layout="strided"),
    verify.Case(1, 3, 8, 9, 3, 3, padding=2, dilation=(2, 2), padding_mode="circular"),
    verify.Case(1, 2, 20, 19, 9, 9, padding=4, dtype="bf16"),
    verify.Case(1, 2, 20, 19, 9, 9, padding=4, dtype="fp16"),
    verify.Case(1, 1, 1, 9, 1, 5, padding=(0, 2)),
    verify.Case(2, 2, 17, 40, 5, 31, padding=(2, 15)),
    verify.Case(2, 3, 10, 12, 5, 5, padding=2, layout="nhwc"),
    verify.Case(1, 2, 9, 21, 3, 13, padding=(1, 6), layout="nhwc", dtype="bf16"),
    verify.Case(1, 2, 6, 7, 3, 3, padding=(4, 5)),
]


@pytest.mark.parametrize("case", CASES, ids=[c.label() + " " + c.dtype for c in CASES])
def test_implicit_gemm_matches_float64_reference(case, device):
    assert_verified(case, "implicit_gemm", device)


def test_implicit_gemm_refuses_what_it_cannot_serve(device):
    import lkconv

    x = torch.randn(1, 2, 9, 9, device=device)
    w = torch.randn(2, 1, 3, 3, device=device)
    with pytest.raises(ValueError, match="stride"):
        lkconv.depthwise_conv2d(x, w, stride=2, algorithm="implicit_gemm")
    with pytest.raises(ValueError, match="dtype"):
        lkconv.depthwise_conv2d(x.double(), w.double(), algorithm="implicit_gemm")
