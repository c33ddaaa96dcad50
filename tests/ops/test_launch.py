"""FastLauncher: direct launches of compiled kernels, checked bit for bit against the JIT launch first."""
import warnings

import pytest
import torch

from lkconv.ops._launch import FastLauncher


class FakeCompiled:
    """Stands in for Triton's CompiledKernel: compiled[grid](*all_args) runs the kernel."""

    def __init__(self, log, mode="same"):
        self.log, self.mode = log, mode

    def __getitem__(self, grid):
        def run(x, y, scale, BLOCK):
            self.log.append(("fast", BLOCK))
            if self.mode == "raise":
                raise TypeError("launcher signature mismatch")
            y.copy_(x * scale + (1.0 if self.mode == "wrong" else 0.0))
        return run


class FakeKernel:
    """Stands in for a @triton.jit function: kernel[grid](*args, **constexprs) binds, launches, returns compiled."""

    arg_names = ["x_ptr", "y_ptr", "scale", "BLOCK"]

    def __init__(self, mode="same"):
        self.log, self.mode = [], mode

    def __getitem__(self, grid):
        def run(x, y, scale, BLOCK, num_warps=4):
            self.log.append(("jit", BLOCK))
            y.copy_(x * scale)
            return FakeCompiled(self.log, self.mode)
        return run


def _call(launcher, x, y, plan="p"):
    launcher(plan, (1, 1, 1), (x, y, 2.0), {"BLOCK": 64, "num_warps": 4}, 1, lambda: torch.empty_like(y))


def test_checked_then_direct():
    k = FakeKernel()
    fl = FastLauncher(k)
    x, y = torch.randn(8), torch.empty(8)
    _call(fl, x, y)
    assert k.log == [("jit", 64), ("fast", 64)]  # JIT launch, then the checked direct launch into scratch
    y.zero_()
    _call(fl, x, y)
    assert k.log[-1] == ("fast", 64) and len(k.log) == 3
    torch.testing.assert_close(y, 2 * x)
    _call(fl, x.double(), torch.empty(8, dtype=torch.float64))  # another dtype: a new configuration
    assert k.log[-2:] == [("jit", 64), ("fast", 64)]


@pytest.mark.parametrize("mode, why", [("wrong", "output differs"), ("raise", "TypeError: launcher signature mismatch")])
def test_refused_configuration_stays_on_jit(mode, why):
    """A direct launch that differs from the JIT launch, or raises, is refused for that configuration only."""
    k = FakeKernel(mode)
    fl = FastLauncher(k)
    x, y = torch.randn(8), torch.empty(8)
    with pytest.warns(UserWarning, match=why.split(":")[0]):
        _call(fl, x, y)
    assert len(fl.refused) == 1 and why in next(iter(fl.refused.values()))
    n = len(k.log)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # refused once: no second probe, no second warning
        _call(fl, x, y)
    assert k.log[n:] == [("jit", 64)]
    torch.testing.assert_close(y, 2 * x)
    k.mode = "same"  # other configurations still get the direct launch
    _call(fl, x.double(), torch.empty(8, dtype=torch.float64))
    assert k.log[-2:] == [("jit", 64), ("fast", 64)] and fl.enabled


def test_env_var_turns_it_off(monkeypatch):
    monkeypatch.setenv("LKCONV_FAST_LAUNCH", "0")
    k = FakeKernel()
    fl = FastLauncher(k)
    x, y = torch.randn(8), torch.empty(8)
    _call(fl, x, y)
    _call(fl, x, y)
    assert [e[0] for e in k.log] == ["jit", "jit"]


class HalfKernel(FakeKernel):
    """Writes only the first half of its output (as one strip of a multi-launch plan does); with
    ``fast_writes=False`` its direct launch writes nothing."""

    def __init__(self, fast_writes=True):
        super().__init__()
        self.fast_writes = fast_writes

    def __getitem__(self, grid):
        def run(x, y, scale, BLOCK, num_warps=4):
            self.log.append(("jit", BLOCK))
            y[:4].copy_(x[:4] * scale)
            return HalfCompiled(self.log, self.fast_writes)
        return run


class HalfCompiled(FakeCompiled):
    def __init__(self, log, writes):
        super().__init__(log)
        self.writes = writes

    def __getitem__(self, grid):
        def run(x, y, scale, BLOCK):
            self.log.append(("fast", BLOCK))
            if self.writes:
                y[:4].copy_(x[:4] * scale)
        return run


def test_partial_output_launch_is_checked_on_its_part():
    """The check copy is taken before the first launch, so the part the launch leaves alone compares equal."""
    k = HalfKernel()
    fl = FastLauncher(k)
    x, y = torch.randn(8), torch.full((8,), float("nan"))
    y[4:] = 7.0
    fl("p", (1, 1, 1), (x, y, 2.0), {"BLOCK": 64, "num_warps": 4}, 1, lambda: y.clone())
    assert not fl.refused and k.log == [("jit", 64), ("fast", 64)]
    torch.testing.assert_close(y, torch.cat([2 * x[:4], torch.full((4,), 7.0)]))


def test_direct_launch_that_writes_nothing_is_refused():
    """Taken before the first launch, the check copy cannot already hold the JIT launch's result."""
    k = HalfKernel(fast_writes=False)
    fl = FastLauncher(k)
    x, y = torch.randn(8), torch.full((8,), float("nan"))
    with pytest.warns(UserWarning, match="output differs"):
        fl("p", (1, 1, 1), (x, y, 2.0), {"BLOCK": 64, "num_warps": 4}, 1, lambda: y.clone())
    assert len(fl.refused) == 1


def test_checked_once_the_first_launch_is_done(monkeypatch):
    """checked(): False before a configuration's first (checked) launch, True after it, True when refused or off."""
    x = torch.randn(8)
    for mode in ("same", "wrong"):
        launcher = FastLauncher(FakeKernel(mode))
        args = (x, torch.empty(8), 2.0)
        assert not launcher.checked("k", (1, 1, 1), args)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            launcher("k", (1, 1, 1), args, {"BLOCK": 8}, 1, lambda: args[1].clone())
        assert launcher.checked("k", (1, 1, 1), args)
        assert not launcher.checked("other", (1, 1, 1), args)
    monkeypatch.setenv("LKCONV_FAST_LAUNCH", "0")
    assert FastLauncher(FakeKernel()).checked("k", (1, 1, 1), (x, torch.empty(8), 2.0))


def test_each_device_its_own_configuration():
    """A compiled kernel is loaded onto one GPU: the same plan on another device is a new configuration."""
    k = FakeKernel()
    fl = FastLauncher(k)
    x = torch.randn(8)
    assert fl._key("p", (x, x)) != fl._key("p", (x.to("meta"), x.to("meta")))
    _call(fl, x, torch.empty(8))
    assert fl.checked("p", (1, 1, 1), (x, torch.empty(8), 2.0))
    assert not fl.checked("p", (1, 1, 1), (x.to("meta"), torch.empty(8, device="meta"), 2.0))


class GridReadingCompiled(FakeCompiled):
    """As Triton's CompiledKernel: its launch reads all three grid entries."""

    def __getitem__(self, grid):
        _ = grid[0], grid[1], grid[2]
        return super().__getitem__(grid)


class GridReadingKernel(FakeKernel):
    def __getitem__(self, grid):
        run = super().__getitem__(grid)
        return lambda *a, **k: (run(*a, **k), GridReadingCompiled(self.log))[1]


def test_short_grids_launch_directly():
    """A one- or two-entry grid (as the JIT launch takes) is padded, not refused."""
    k = GridReadingKernel()
    fl = FastLauncher(k)
    x, y = torch.randn(8), torch.empty(8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fl("p", (1,), (x, y, 2.0), {"BLOCK": 64, "num_warps": 4}, 1, lambda: torch.empty_like(y))
        fl("p", (1,), (x, y, 2.0), {"BLOCK": 64, "num_warps": 4}, 1, lambda: torch.empty_like(y))
    assert not fl.refused and k.log == [("jit", 64), ("fast", 64), ("fast", 64)]
    assert fl.checked("p", (1, 1), (x, y, 2.0))
