"""Winners of measured algorithm choices, kept in memory and in a JSON file on disk.

The file lives at ``$LKCONV_CACHE_DIR/autotune.json`` (default ``~/.cache/lkconv``). ``LKCONV_CACHE=0``
keeps choices in memory only. A file that cannot be read or parsed is ignored and rewritten; writes go to a
temporary file that is renamed into place, so concurrent processes never see half a file.
"""
from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Dict, Optional

_FORMAT = 1
_lock = threading.Lock()
_memory: Dict[str, dict] = {}
_loaded_from: Optional[Path] = None


def cache_path() -> Optional[Path]:
    """The cache file, or None when the disk cache is disabled."""
    if os.environ.get("LKCONV_CACHE", "1").strip().lower() in ("0", "false", "off", "no"):
        return None
    root = os.environ.get("LKCONV_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "lkconv")
    return Path(root) / "autotune.json"


def _read(path: Path) -> Dict[str, dict]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("format") != _FORMAT or not isinstance(data.get("entries"), dict):
        return {}
    return {k: v for k, v in data["entries"].items() if isinstance(v, dict) and isinstance(v.get("algorithm"), str)}


def _ensure_loaded() -> None:
    global _loaded_from
    path = cache_path()
    if path is not None and _loaded_from != path:
        _memory.update(_read(path))
        _loaded_from = path


def lookup(key: str) -> Optional[dict]:
    """The stored entry {"algorithm": name, "times_ms": {...}} for key, if any."""
    with _lock:
        _ensure_loaded()
        return _memory.get(key)


def store(key: str, entry: dict) -> None:
    """Remember entry for key in memory and (unless disabled) on disk."""
    with _lock:
        _ensure_loaded()
        _memory[key] = entry
        path = cache_path()
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            merged = _read(path)
            merged.update(_memory)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".autotune-", suffix=".json")
            with os.fdopen(fd, "w") as f:
                json.dump({"format": _FORMAT, "entries": merged}, f, indent=1, sort_keys=True)
            os.replace(tmp, path)
        except OSError:
            pass  # a read-only or full disk must never break a convolution


def clear_memory() -> None:
    """Forget in-memory entries (the file is re-read on next use)."""
    global _loaded_from
    with _lock:
        _memory.clear()
        _loaded_from = None


def entries() -> Dict[str, dict]:
    """All known entries (memory and disk)."""
    with _lock:
        _ensure_loaded()
        return dict(_memory)
