"""Generic inline blocks: one number (or a range) read from a named CSV cell.

They keep a sentence in the document and only its numbers generated, with the source in
the marker itself, e.g. ``<!-- report:cell results/p5/cv.csv model=svm AUC_mean -->``::

    cell PATH [COLUMN=VALUE ...] COLUMN [FORMAT]   the one row matching every filter
    span PATH [COLUMN=VALUE ...] COLUMN [FORMAT]   min-max over the matching rows

A filter value may list alternatives with ``|`` (``config=lstm-2x512|cnn+lstm``).
FORMAT: ``num`` (3 decimals, the default), ``raw`` (the cell as written), ``num2``, ``num1``, ``signed``, ``p``,
``count``, ``int``, ``min`` / ``min1`` (seconds as minutes), ``pct`` (a fraction as a
whole percentage), ``mib`` (MiB, whole), ``x`` / ``x1`` (a ratio), ``s`` / ``s1``
(seconds), ``ms`` (seconds as milliseconds).
"""

from __future__ import annotations

import math
from typing import Callable, Mapping, Sequence

from dfdetect.report import Context, ReportError, block
from dfdetect.report import fmt
from dfdetect.results import to_float

FORMATS: dict[str, Callable] = {
    "raw": str,
    "num": fmt.num,
    "num2": lambda v: fmt.num(v, 2),
    "num1": lambda v: fmt.num(v, 1),
    "num4": lambda v: fmt.num(v, 4),
    "signed": fmt.signed,
    "signed2": lambda v: fmt.signed(v, 2),
    "p": fmt.p_value,
    "count": fmt.count,
    "int": lambda v: fmt.count(v).replace(",", ""),
    "min": lambda v: f"{to_float(v) / 60:.0f} min",
    "min1": fmt.minutes,
    "pct": lambda v: f"{100 * to_float(v):.0f} %",
    "mib": lambda v: f"{to_float(v):,.0f} MiB",
    "x": lambda v: f"{to_float(v):.2f}x",
    "x1": lambda v: f"{to_float(v):.1f}x",
    "s": lambda v: f"{to_float(v):.0f} s",
    "s1": lambda v: f"{to_float(v):.1f} s",
    "ms": lambda v: f"{1000 * to_float(v):.0f} ms",
}


def _parse(args: Sequence[str]) -> tuple[str, dict[str, set[str]], str, str]:
    if len(args) < 2:
        raise ReportError(f"cell/span need PATH [FILTER=VALUE ...] COLUMN [FORMAT]: {args}")
    path, rest = args[0], list(args[1:])
    filters = {}
    while rest and "=" in rest[0]:
        key, _, value = rest.pop(0).partition("=")
        filters[key] = set(value.split("|"))
    if not rest:
        raise ReportError(f"no column named in {args}")
    column = rest.pop(0)
    form = rest.pop(0) if rest else "num"
    if form not in FORMATS or rest:
        raise ReportError(f"unknown format or extra arguments in {args} "
                          f"(formats: {', '.join(FORMATS)})")
    return path, filters, column, form


def matching(ctx: Context, path: str, filters: Mapping[str, set[str]]) -> list[dict]:
    """The rows of ``path`` whose columns take one of the filter values."""
    rows = ctx.table(path)
    if not rows:
        raise ReportError(f"{path}: missing or empty")
    return [r for r in rows if all(r.get(k, "") in v for k, v in filters.items())]


@block("cell")
def cell(ctx: Context, *args: str) -> str:
    """One cell, formatted."""
    path, filters, column, form = _parse(args)
    rows = matching(ctx, path, filters)
    if len(rows) != 1:
        raise ReportError(f"{path} {filters}: {len(rows)} rows match, need exactly one")
    if column not in rows[0]:
        raise ReportError(f"{path}: no column {column!r}")
    return FORMATS[form](rows[0][column])


@block("span")
def span(ctx: Context, *args: str) -> str:
    """``low-high`` of a column over the matching rows (``0.47-0.57``)."""
    path, filters, column, form = _parse(args)
    rows = matching(ctx, path, filters)
    values = [to_float(r.get(column)) for r in rows]
    values = [v for v in values if math.isfinite(v)]
    if not values:
        raise ReportError(f"{path} {filters}: no finite {column!r}")
    low, high = FORMATS[form](min(values)), FORMATS[form](max(values))
    return low if low == high else f"{low}-{high}"
