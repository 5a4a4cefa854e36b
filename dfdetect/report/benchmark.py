"""Blocks of the embedded benchmark's difficulty check (docs/benchmark.md)."""

from __future__ import annotations

from dfdetect.report import Context, ReportError, block
from dfdetect.report import fmt
from dfdetect.results import to_float


@block("benchmark.difficulty")
def difficulty(ctx: Context) -> str:
    """``make benchmark-difficulty``: pixel baseline vs Meso-4 per face source and generator."""
    rows = ctx.table("results/benchmarks/difficulty.csv")
    if not rows:
        raise ReportError("results/benchmarks/difficulty.csv: missing")
    by = {(r["faces"], r["generator"], r["model"]): r for r in rows}
    out = []
    for faces, generator in dict.fromkeys((r["faces"], r["generator"]) for r in rows):
        logreg = by.get((faces, generator, "logreg_pixels"), {})
        meso = by.get((faces, generator, "meso4"), {})
        source = "procedural" if faces == "procedural" else "real face photos"
        out.append([source, generator, fmt.num(logreg.get("roc_auc")),
                    f"{fmt.num(meso.get('roc_auc'))} ({fmt.num(meso.get('roc_auc_self_blend'))} / "
                    f"{fmt.num(meso.get('roc_auc_identity_swap'))})",
                    f"{meso.get('epochs', '-')} / {to_float(meso.get('seconds')):.0f} s"])
    return fmt.table(["faces", "generator", "logreg_pixels ROC AUC",
                      "meso4 ROC AUC (self-blend / identity swap)", "Meso-4 epochs / s"], out)
