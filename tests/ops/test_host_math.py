"""The host-side integer helpers that stand in for Triton's constexpr functions in launch code."""
import pytest

from lkconv._triton import cdiv, next_power_of_2, triton_available


def test_cdiv_and_next_power_of_2():
    assert [cdiv(a, 4) for a in (-5, -4, 0, 1, 4, 5, 8, 9)] == [-1, -1, 0, 1, 1, 2, 2, 3]
    assert [next_power_of_2(n) for n in (0, 1, 2, 3, 4, 5, 1000, 1024, 1025)] == [0, 1, 2, 4, 4, 8, 1024, 1024, 2048]
    with pytest.raises(ValueError, match="n >= 0"):
        next_power_of_2(-1)


@pytest.mark.skipif(not triton_available(), reason="Triton is not installed")
def test_helpers_match_triton():
    import triton

    assert all(next_power_of_2(n) == triton.next_power_of_2(n) for n in range(0, 5000))
    assert all(cdiv(a, b) == triton.cdiv(a, b) for a in range(0, 300) for b in range(1, 40))
