"""Shared assertions of the op tests."""
from lkconv.tools import verify


def assert_verified(case, algorithm, device):
    """``lkconv verify``'s check of one case: runs, and every direction is within the case's tolerance."""
    res = verify.check(case, algorithm, device)
    assert res.error is None, res.error
    for name, err in res.errors.items():
        assert err <= res.tol, f"{name}: rel error {err:.2e} > {res.tol:.0e} for {case.label()} ({algorithm})"
    return res
