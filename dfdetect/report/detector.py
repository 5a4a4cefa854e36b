"""Blocks of the shipped detector's numbers (model card, README): its training record
(``results/detector/history.csv``, ``training.json``) and its evaluations
(``results/detector/benchmark_*/metrics.csv``, ``results/realworld/default/``).

A detector retrained later rewrites these CSVs; the blocks follow. Where a CSV is not
there yet the block says "not yet measured".
"""

from __future__ import annotations

import json

from dfdetect.report import Context, block
from dfdetect.report import fmt
from dfdetect.report.realworld import SUBSETS, shown_subsets, subset_rows
from dfdetect.results import to_float

FOLDER = "results/detector"
#: Evaluations of the detector on the embedded benchmark's test splits: folder -> label.
#: (The first release's are in ``results/detector/v1_scratch/``.)
BENCHMARKS = {"benchmark_v3_faces": "embedded benchmark v3, real faces, test split",
              "benchmark_v3_proc": "embedded benchmark v3, procedural faces, test split"}


def training(ctx: Context) -> dict:
    """``training.json`` (empty when the detector has not been trained here)."""
    path = ctx.root / FOLDER / "training.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def history(ctx: Context) -> list[dict]:
    return ctx.table(f"{FOLDER}/history.csv")


@block("detector.selection")
def selection(ctx: Context) -> str:
    """``epoch 4 of 4: FF++ selection AUC 0.787; validation SBI 0.804, identity swap 0.844;
    threshold 0.1468`` (the FF++ part only where the run selected on those clips)."""
    t = training(ctx)
    if not t:
        return fmt.NOT_MEASURED
    ffpp = (f"FF++ selection ROC AUC {fmt.num(t['best_ffpp_auc'])}; "
            if t.get("best_ffpp_auc") is not None else "")
    return (f"epoch {t['best_epoch']} of {t['epochs_done']}: {ffpp}validation ROC AUC SBI "
            f"{fmt.num(t['best_val_auc_sbi'])}, identity swap {fmt.num(t['best_val_auc_swap'])}; "
            f"threshold {fmt.num(t['threshold'], 4)}")


@block("detector.time")
def train_time(ctx: Context) -> str:
    """Training time of the selected epochs, summed from history.csv's ``seconds``."""
    t, h = training(ctx), history(ctx)
    if not h:
        return fmt.NOT_MEASURED
    upto = [r for r in h if int(to_float(r["epoch"])) <= int(to_float(t.get("best_epoch", 1e9)))]
    seconds = sum(to_float(r["seconds"]) for r in upto)
    rate = [to_float(r["images_per_s"]) for r in upto]
    return (f"{seconds / 60:.0f} min of training steps for epochs 1-{upto[-1]['epoch']} "
            f"({fmt.span(rate, 0)} images/s; history.csv `seconds`)")


@block("detector.climb")
def climb(ctx: Context, *epochs: str) -> str:
    """Validation AUC at the named epochs: ``0.55 -> 0.67 (5) -> 0.78 (11)``."""
    by_epoch = {r["epoch"]: r for r in history(ctx)}
    steps = [f"{fmt.num(by_epoch[e]['val_auc'], 2)} ({e})" for e in epochs if e in by_epoch]
    return " -> ".join(steps) if steps else fmt.NOT_MEASURED


@block("detector.measured")
def measured(ctx: Context, model: str = "default") -> str:
    """The detector's evaluations: validation, the embedded benchmarks, real deepfakes."""
    t = training(ctx)
    threshold = fmt.num(t.get("threshold"), 4) if t else "its threshold"
    rows = []
    if t:
        rows.append(["validation (held-out faces), SBI / identity swap",
                     f"{fmt.num(t['best_val_auc_sbi'])} / {fmt.num(t['best_val_auc_swap'])}",
                     "-", "-"])
    for folder, label in BENCHMARKS.items():
        table = {(r["group"], r["name"]): r for r in ctx.table(f"{FOLDER}/{folder}/metrics.csv")}
        r = table.get(("all", "all"))
        if r is None:
            continue
        per = "; ".join(f"{name.replace('_', ' ')} {fmt.num(m['video_auc'])}"
                        for (group, name), m in sorted(table.items()) if group == "method")
        rows.append([f"{label} ({fmt.count(r['n_videos'])} crops{'; ' + per if per else ''})",
                     fmt.num(r["video_auc"]), fmt.num(r["video_acc"]), "-"])
    found = subset_rows(ctx, model)
    for subset in shown_subsets(found):
        r = found[subset]
        rows.append([f"real deepfakes, {SUBSETS[subset]} ({fmt.count(r['n_real'])} real, "
                     f"{fmt.count(r['n_fake'])} fake)",
                     fmt.interval(r["video_auc"], r["auc_low"], r["auc_high"], 3),
                     fmt.interval(r["accuracy"], r["acc_low"], r["acc_high"], 3),
                     fmt.num(r["always_fake_acc"], 3)])
    if not found:
        rows.append(["real deepfakes (`realworld/`)", fmt.NOT_MEASURED, "-", "-"])
    return fmt.table(["evaluation", "video ROC AUC [95 % CI]",
                      f"accuracy at {threshold} [95 % CI]", "always-FAKE accuracy"], rows)


@block("detector.ablation")
def ablation(ctx: Context) -> str:
    """Every detector recipe tried (``ablation.csv``): its selection on the FF++ clips and,
    scored once afterwards, the cross-dataset test clips with their interval."""
    rows = ctx.table(f"{FOLDER}/ablation.csv")
    if not rows:
        return f"Recipes compared (`{FOLDER}/ablation.csv`): {fmt.NOT_MEASURED}."
    out = []
    for r in rows:
        test = (f"{fmt.interval(r.get('test_auc'), r.get('test_auc_low'), r.get('test_auc_high'))}"
                f" ({fmt.count(r.get('test_n_real'))} / {fmt.count(r.get('test_n_fake'))})"
                if r.get("test_auc") else "-")
        out.append([r["run"], f"{r.get('backbone', '')}, {r.get('size', '')} px",
                    f"{r.get('best_epoch', '')} of {r.get('epochs_done', '')}",
                    f"{fmt.num(r.get('val_auc_sbi'))} / {fmt.num(r.get('val_auc_swap'))}",
                    f"{fmt.num(r.get('ffpp_auc'))} ({fmt.num(r.get('ffpp_auc_c23'))} / "
                    f"{fmt.num(r.get('ffpp_auc_c40'))})", test, fmt.num(r.get("test_acc")),
                    fmt.num(r.get("train_hours"), 1), r.get("note", "")])
    return fmt.table(["run", "network", "selected epoch", "validation AUC SBI / swap",
                      "FF++ selection AUC (c23 / c40)",
                      "cross-dataset test AUC [95 % CI] (real / fake)", "test accuracy",
                      "hours", "what changed"], out)


@block("detector.variants")
def variants_table(ctx: Context) -> str:
    """How each detector's frames become a clip score (``variants.csv``): FF++ selection
    AUC of every variant and its paired difference to the shipped one, then the verdict."""
    from dfdetect.detector.variants import SHIPPED, adopted  # numpy only

    rows = ctx.table(f"{FOLDER}/variants.csv")
    if not rows:
        return f"Inference variants (`{FOLDER}/variants.csv`): {fmt.NOT_MEASURED}."
    models = list(dict.fromkeys(r["model"] for r in rows))
    cells: dict[tuple, dict] = {}
    for r in rows:
        cells.setdefault((r["view"], r["aggregation"]), {})[r["model"]] = r
    out = []
    for (view, how), per in cells.items():
        shipped = (view, how) == SHIPPED
        line = [f"{'mirrored + plain' if view == 'flip_average' else 'plain'}, {how}"
                + (" (predict)" if shipped else "")]
        for m in models:
            r = per.get(m)
            line.append("-" if r is None else fmt.num(r["ffpp_auc"]) if shipped else
                        f"{fmt.num(r['ffpp_auc'])} ({fmt.signed(r['diff'])} "
                        f"[{fmt.signed(r['diff_low'])}, {fmt.signed(r['diff_high'])}])")
        out.append(line)
    n = f"{fmt.count(rows[0]['n_real'])} real / {fmt.count(rows[0]['n_fake'])} fake clips"
    won = adopted(rows)
    verdict = (f"Better than predict's variant on every model, interval above zero: "
               f"{', '.join(f'{v} {a}' for v, a in won)}." if won else
               "No variant beats predict's (plain crops, mean) on every model with a paired "
               "interval above zero, so predict keeps it.")
    return (fmt.table(["crops, aggregation"] + [f"{m}: FF++ AUC (vs predict's)"
                                                for m in models], out)
            + f"\n\nFF++ selection clips ({n}); differences paired on the same clips, 95 % "
              f"bootstrap intervals. {verdict}")


@block("detector.combinations")
def combinations_table(ctx: Context) -> str:
    """Finished runs combined (``combinations.csv``): their scores averaged (ensemble) or
    their weights averaged (soup), each paired against the shipped detector."""
    rows = ctx.table(f"{FOLDER}/combinations.csv")
    if not rows:
        return f"Runs combined (`{FOLDER}/combinations.csv`): {fmt.NOT_MEASURED}."
    out = [[r["combination"], "scores averaged" if r["how"] == "ensemble" else "weights averaged",
            f"{fmt.num(r['ffpp_auc'])} ({fmt.num(r['ffpp_auc_c23'])} / "
            f"{fmt.num(r['ffpp_auc_c40'])})",
            f"{fmt.signed(r['diff'])} [{fmt.signed(r['diff_low'])}, "
            f"{fmt.signed(r['diff_high'])}]", fmt.num(r["diff_p"], 2)] for r in rows]
    better = [f"{r['combination']} {r['how']}" for r in rows if float(r["diff_low"]) > 0]
    n = f"{fmt.count(rows[0]['n_real'])} real / {fmt.count(rows[0]['n_fake'])} fake clips"
    verdict = (f"Better than {rows[0]['against']} with a paired interval above zero: "
               f"{', '.join(better)}." if better else
               f"None beats {rows[0]['against']} with a paired interval above zero, so one "
               "model ships.")
    return (fmt.table(["runs", "combined by", "FF++ selection AUC (c23 / c40)",
                       f"vs {rows[0]['against']} [95 % CI]", "p"], out)
            + f"\n\nFF++ selection clips ({n}), predict's variant (plain crops, mean). "
              f"{verdict}")
