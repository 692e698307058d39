"""Number formatting shared by the HTML page, the charts and the terminal tables."""

from __future__ import annotations

__all__ = ["compact", "count", "nbytes", "nbytes_change", "pct", "signed"]


def count(n: int | None) -> str:
    """``1,234,567``; ``—`` for unknown."""
    return "—" if n is None else f"{n:,}"


def signed(n: int | None) -> str:
    """``+1,234``, ``0``, or the number with a typographic minus sign; ``—`` for unknown."""
    if n is None:
        return "—"
    if n > 0:
        return f"+{n:,}"
    if n < 0:
        return f"\u2212{-n:,}"
    return "0"


def compact(x: float) -> str:
    """``950``, ``12k``, ``3.4M``, ``1.2B`` (axis labels)."""
    a = abs(x)
    for div, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if a >= div:
            v = x / div
            return f"{v:.0f}{suffix}" if abs(v) >= 10 or v == int(v) else f"{v:.1f}{suffix}"
    if a >= 1 or a == 0:
        return f"{x:.0f}" if x == int(x) else f"{x:.1f}"
    return f"{x:.2g}"


def nbytes(n: int | None) -> str:
    """``512 B``, ``1.5 MB``, ``2.31 GB`` (decimal units); ``—`` for unknown."""
    if n is None:
        return "—"
    units = (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3))
    for unit, div in units:
        if abs(n) >= div:
            return f"{n / div:.2f} {unit}" if abs(n) < 10 * div else f"{n / div:.1f} {unit}"
    return f"{n} B"


def pct(part: int | None, whole: int | None) -> str:
    """``12.3 %`` of ``whole``; empty when unknown or zero."""
    if part is None or not whole:
        return ""
    return f"{100 * part / whole:.1f} %"


def nbytes_change(old: int | None, new: int | None) -> str:
    """``+1.43 MB`` / typographic minus; ``—`` when either size is unknown."""
    if old is None or new is None:
        return "—"
    d = new - old
    return ("+" if d > 0 else "\u2212" if d < 0 else "") + nbytes(abs(d))
