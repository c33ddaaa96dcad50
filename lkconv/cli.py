"""``lkconv`` command line: verify | bench | info (and erf | train where installed)."""
from __future__ import annotations

import sys
from typing import Optional, Sequence

USAGE = """usage: lkconv <command> [options]

commands:
  verify   randomized verification of every algorithm against a float64 reference (exit 1 on failure)
  bench    lkconv vs PyTorch on the papers' layer shapes: table, JSON and PNG plot
  info     versions, device, Triton availability and the autotune cache location

'lkconv <command> --help' describes each command's options."""


def _info(argv: Sequence[str]) -> int:
    import torch

    import lkconv
    from lkconv._triton import interpreting, triton_available
    from lkconv.ops.autotune_cache import cache_path, entries

    print(f"lkconv {lkconv.__version__}, torch {torch.__version__}")
    if triton_available():
        import triton

        print(f"triton {triton.__version__}" + (" (interpreter: TRITON_INTERPRET=1)" if interpreting() else ""))
    else:
        print("triton: not installed (CPU reference paths only)")
    if torch.cuda.is_available():
        print(f"device: {torch.cuda.get_device_name()} ({torch.cuda.get_device_properties(0).multi_processor_count} SMs)")
    else:
        print("device: CPU only")
    print(f"autotune cache: {cache_path() or 'disabled (LKCONV_CACHE=0)'} ({len(entries())} entries)")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    cmd, rest = argv[0], argv[1:]
    if cmd == "verify":
        from lkconv.tools.verify import main as run
    elif cmd == "bench":
        from lkconv.tools.bench import main as run
    elif cmd == "info":
        run = _info
    else:
        print(f"lkconv: unknown command {cmd!r}\n\n{USAGE}", file=sys.stderr)
        return 2
    return run(rest)


if __name__ == "__main__":
    sys.exit(main())
