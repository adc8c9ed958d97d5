"""Sizes for people, in binary units: the CLI, progress bars and the mirror page agree."""

from __future__ import annotations


def human_size(n: int | None) -> str:
    if n is None:
        return "?"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(n)


def exact_size(n: int | None) -> str:
    """A size people read and a script can check: ``243.9 MiB (255,757,821 B)``."""
    if n is None:
        return "unknown"
    return human_size(n) if n < 1024 else f"{human_size(n)} ({n:,} B)"


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 file``, ``3 files``, ``2 entries`` (``many`` for irregular plurals)."""
    return f"{n} {word if n == 1 else (many or word + 's')}"
