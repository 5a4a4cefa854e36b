"""The documents' numbers, generated from the committed CSVs (``python -m dfdetect.report``).

A reproduction is only as trustworthy as its weakest sentence, and a number typed by hand
drifts from the table it came from. So every table and every run-derived number in
README.md, ``docs/*.md``, ``results/*/README.md`` and ``dfdetect/weights/MODEL_CARD.md``
sits inside a marked block that this package rewrites::

    <!-- report:p1.table -->
    (anything here is replaced by what the block ``p1.table`` writes)
    <!-- /report:p1.table -->

A marker may also sit inside a line (the block then writes a phrase, not a paragraph):
``the fusion gains <!-- report:p1.gain -->+0.022<!-- /report:p1.gain --> AUC``. A marker
may carry arguments after the name, separated by spaces, quoted when they hold one
(``<!-- report:cell results/p5/cv.csv model=svm "AUC_mean" -->``); the closing marker
names the block only.

Adding a block: write one function ``(ctx, *args) -> str`` in the module of its document
(:mod:`.papers`, :mod:`.realworld`, :mod:`.detector`, :mod:`.benchmark`), decorate it
with ``@block("name")``, and put the marker where the text should go; then
``python -m dfdetect.report`` fills it. ``python -m dfdetect.report --check`` (and
``tests/test_report.py``) fails when a committed document differs from what the blocks
write, so a rerun that changes a CSV without regenerating the documents is caught.

A block reads CSVs through :class:`Context` only (paths relative to the repository
root) and must be deterministic (seeded bootstraps), so the check is exact.
"""

from __future__ import annotations

import argparse
import importlib
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from dfdetect.io import atomic_write_text, read_table

__all__ = ["BLOCKS", "Context", "ReportError", "block", "documents", "main", "render",
           "stale_documents"]

#: The repository root of a checkout (documents and results/ live there).
ROOT = Path(__file__).resolve().parents[2]
#: Block name -> function; filled by the block modules' ``@block`` decorators.
BLOCKS: dict[str, Callable[..., str]] = {}
#: The modules that hold blocks, imported on first use.
_BLOCK_MODULES = ("cells", "papers", "realworld", "detector", "benchmark")
_MARKER = re.compile(
    r'<!-- report:(?P<name>[\w.\-]+)(?P<args>(?: (?:"[^"]*"|[^\s>"]+))*) -->'
    r"(?P<body>.*?)"
    r"<!-- /report:(?P=name) -->", re.S)
#: Any opening or closing marker, to find one the pattern above cannot pair.
_ANY_MARKER = re.compile(r"<!-- /?report:[^>]*-->")


class ReportError(ValueError):
    """A document's markers are unbalanced or name an unknown block."""


def block(name: str) -> Callable[[Callable[..., str]], Callable[..., str]]:
    """Registers a block function under ``name`` (what the markers say)."""
    def register(fn: Callable[..., str]) -> Callable[..., str]:
        if name in BLOCKS:
            raise ReportError(f"block {name} defined twice")
        BLOCKS[name] = fn
        return fn
    return register


def _load_blocks() -> None:
    for module in _BLOCK_MODULES:
        importlib.import_module(f"{__name__}.{module}")


@dataclass
class Context:
    """What a block reads: CSVs under the repository root, each read once per run.

    Attributes:
        root: the repository root (tests point it at a copy).
    """

    root: Path = ROOT
    _tables: dict[str, list[dict]] = field(default_factory=dict, repr=False)

    def table(self, path: str) -> list[dict]:
        """The rows of ``root/path`` (string cells; [] when the file is absent)."""
        if path not in self._tables:
            self._tables[path] = read_table(self.root / path)
        return self._tables[path]

    def exists(self, path: str) -> bool:
        """Whether ``root/path`` is there (blocks fail soft on a CSV not yet measured)."""
        return (self.root / path).exists()

    def glob(self, pattern: str) -> list[str]:
        """Paths under ``root`` matching ``pattern``, relative, sorted."""
        return sorted(str(p.relative_to(self.root)) for p in self.root.glob(pattern))


def render(text: str, ctx: Context | None = None) -> str:
    """``text`` with every marked block rewritten by its function.

    A block whose opening marker ends its line is a paragraph: its output goes on the
    lines between the markers, indented as the opening marker is (a table inside a list
    item stays in it). Otherwise it is a phrase, written between them inline.

    Raises:
        ReportError: an unknown block, or a marker without its partner.
    """
    _load_blocks()
    ctx = ctx or Context()
    paired = [m.span() for m in _MARKER.finditer(text)]
    for loose in _ANY_MARKER.finditer(text):
        if not any(a <= loose.start() < b for a, b in paired):
            line = text.count("\n", 0, loose.start()) + 1
            raise ReportError(f"line {line}: {loose.group()} has no partner")

    def replace(match: re.Match) -> str:
        name, args = match["name"], shlex.split(match["args"])
        if name not in BLOCKS:
            line = text.count("\n", 0, match.start()) + 1
            raise ReportError(f"line {line}: no block named {name} (known: "
                              f"{', '.join(sorted(BLOCKS))})")
        out = BLOCKS[name](ctx, *args)
        opening = match.group(0)[:match.start("body") - match.start()]
        closing = f"<!-- /report:{name} -->"
        if match["body"].startswith("\n"):
            # a block inside a list item keeps the item's indentation on every line
            line_start = text.rfind("\n", 0, match.start()) + 1
            indent = text[line_start:match.start()]
            indent = indent if not indent.strip() else ""
            body = "\n".join(indent + line if line else line
                             for line in out.strip("\n").split("\n"))
            return f"{opening}\n{body}\n{indent}{closing}"
        return f"{opening}{out.strip()}{closing}"

    return _MARKER.sub(replace, text)


def documents(root: Path = ROOT) -> list[Path]:
    """Every document the generator maintains (those with at least one marker).

    ``results/bench/README.md`` is not among them: ``benchmarks/run_all.py`` writes it
    whole from its CSVs (``tests/test_report.py`` checks it the same way).
    """
    candidates = [root / "README.md", *sorted((root / "docs").glob("*.md")),
                  *sorted((root / "results").glob("*/README.md")),
                  root / "dfdetect" / "weights" / "MODEL_CARD.md"]
    return [p for p in candidates if p.is_file() and _ANY_MARKER.search(p.read_text())]


def stale_documents(root: Path = ROOT) -> list[str]:
    """The documents whose text differs from what their blocks write, relative paths."""
    ctx = Context(root)
    return [str(p.relative_to(root)) for p in documents(root)
            if render(p.read_text(), ctx) != p.read_text()]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dfdetect.report",
        description="Rewrite the generated blocks of README.md, docs/, results/*/README.md "
                    "and the model card from the committed CSVs (nothing is trained).")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 naming each document that differs")
    parser.add_argument("--root", default=str(ROOT), help="repository root (default: this "
                                                          "checkout)")
    args = parser.parse_args(argv)
    root = Path(args.root)
    ctx = Context(root)
    changed = []
    try:
        for path in documents(root):
            old = path.read_text()
            new = render(old, ctx)
            if new != old:
                changed.append(str(path.relative_to(root)))
                if not args.check:
                    atomic_write_text(path, new)
    except ReportError as error:
        print(f"dfdetect.report: error: {path}: {error}", file=sys.stderr)
        return 2
    for name in changed:
        print(("differs: " if args.check else "rewritten: ") + name)
    if args.check and changed:
        print("run `python -m dfdetect.report` and commit the documents", file=sys.stderr)
        return 1
    return 0
