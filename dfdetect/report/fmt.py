"""How the generated blocks write numbers and tables: one format for every document."""

from __future__ import annotations

import math
from typing import Iterable, Mapping, Sequence

from dfdetect.results import to_float

#: What a block writes where its CSV does not exist yet.
NOT_MEASURED = "not yet measured"


def num(value, digits: int = 3) -> str:
    """``0.941``; ``-`` for a missing value."""
    x = to_float(value)
    return "-" if not math.isfinite(x) else f"{x:.{digits}f}"


def signed(value, digits: int = 3) -> str:
    """``+0.022`` / ``-0.037`` (a difference); ``0.000`` for none at all."""
    x = to_float(value)
    if not math.isfinite(x):
        return "-"
    text = f"{x:+.{digits}f}"
    return text[1:] if float(text) == 0 else text


def pm(mean, sd, digits: int = 3) -> str:
    """``0.891 ± 0.034`` (mean ± sd over runs)."""
    return f"{num(mean, digits)} ± {num(sd, digits)}"


def p_value(value) -> str:
    """A p-value to the precision it deserves: ``0.002``, ``0.03``, ``0.12``, ``1``."""
    x = to_float(value)
    if not math.isfinite(x):
        return "-"
    if x < 0.001:
        return "< 0.001"
    if x >= 0.995:
        return "1"
    return f"{x:.3f}" if x < 0.01 else f"{x:.2f}"


def span(values: Iterable, digits: int = 2) -> str:
    """``0.47-0.57``: the range of the finite values (one value alone if they agree)."""
    xs = [to_float(v) for v in values]
    xs = [x for x in xs if math.isfinite(x)]
    if not xs:
        return "-"
    lo, hi = num(min(xs), digits), num(max(xs), digits)
    return lo if lo == hi else f"{lo}-{hi}"


def interval(value, low, high, digits: int = 2) -> str:
    """``0.65 [0.45, 0.83]`` (a point with its 95 % interval)."""
    return f"{num(value, digits)} [{num(low, digits)}, {num(high, digits)}]"


def count(value) -> str:
    """``21,331,753``; ``-`` for a missing value."""
    x = to_float(value)
    return "-" if not math.isfinite(x) else f"{int(round(x)):,}"


def minutes(seconds) -> str:
    """``38.8 min`` from seconds."""
    x = to_float(seconds)
    return "-" if not math.isfinite(x) else f"{x / 60:.1f} min"


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def by(rows: Sequence[Mapping], key: str) -> dict[str, Mapping]:
    """Rows indexed by one column (the last row wins)."""
    return {r.get(key, ""): r for r in rows}
