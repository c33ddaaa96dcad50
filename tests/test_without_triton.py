"""lkconv imports and runs its PyTorch paths where Triton is absent (a CPU-only PyTorch without it)."""
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import importlib.abc
    import sys

    import torch

    for name in [m for m in sys.modules if m == "triton" or m.startswith("triton.")]:
        del sys.modules[name]

    class NoTriton(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name == "triton" or name.startswith("triton."):
                raise ImportError("no triton here")

    sys.meta_path.insert(0, NoTriton())
    import lkconv
    import lkconv.nn  # noqa: F401

    x = torch.randn(2, 3, 100)
    assert lkconv.long_conv1d(x, torch.randn(3, 50)).shape == x.shape
    assert lkconv.short_conv1d(x, torch.randn(3, 4)).shape == x.shape
    assert lkconv.depthwise_conv2d(torch.randn(1, 4, 9, 9), torch.randn(4, 1, 5, 5), padding=2).shape == (1, 4, 9, 9)
    assert "triton" not in sys.modules
    print("ok")
""")


def test_imports_and_runs_without_triton():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
