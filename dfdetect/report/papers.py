"""Blocks of the five papers' tables and test verdicts (README and results/<paper>/README.md).

Each reads the tables its experiment commits; the paper's own numbers come from the
paper's module (``dfdetect/papers/<paper>.py``), never from the prose.
"""

from __future__ import annotations

import importlib

from dfdetect.papers import deepforense, fusion
from dfdetect.report import Context, ReportError, block
from dfdetect.report import fmt
from dfdetect.results import to_float
from dfdetect.scales import SCALES

#: Significance level the sentences use, on the Holm-adjusted p-values.
ALPHA = 0.05


# --------------------------------------------------------------------------- comparisons

def _split_name(split: str) -> str:
    return {"test": "in-dataset", "cross": "on the held-out forgery"}.get(split, split)


@block("comparisons")
def comparisons(ctx: Context, path: str) -> str:
    """A comparisons.csv as a table: difference, runs won, both tests raw and Holm-adjusted."""
    rows = ctx.table(path)
    if not rows:
        raise ReportError(f"{path}: missing")
    splits = list(dict.fromkeys(r["split"] for r in rows))
    by = {(r["a"], r["b"], r["split"]): r for r in rows}
    pairs = list(dict.fromkeys((r["a"], r["b"]) for r in rows))

    def cell(row):
        if row is None:
            return "-"
        return (f"{fmt.signed(row['difference'])}, {row['won']}/{row['pairs']} "
                f"({fmt.p_value(row['paired t p'])} → {fmt.p_value(row['paired t p (Holm)'])}"
                f" / {fmt.p_value(row['bootstrap p (test items)'])} → "
                f"{fmt.p_value(row['bootstrap p (Holm)'])})")
    header = ["a vs b", *[f"{s}: a - b, runs a won (t p → Holm / bootstrap p → Holm)"
                          for s in splits]]
    return fmt.table(header, [[f"{a} vs {b}", *[cell(by.get((a, b, s))) for s in splits]]
                              for a, b in pairs])


@block("paired")
def paired(ctx: Context, path: str, *filters: str) -> str:
    """A table of :func:`dfdetect.results.paired_comparison` rows (a ``comparison.csv``
    of a pretrained study against its from-scratch reference), ``col=value`` filters.

    "not yet measured" while the CSV is not there (the study has not been run here).
    """
    rows = ctx.table(path)
    if not rows:
        return f"`{path}`: {fmt.NOT_MEASURED}."
    wanted = [f.split("=", 1) for f in filters]
    rows = [r for r in rows if all(r.get(k) == v for k, v in wanted)]
    out = []
    for r in rows:
        # P5's feature tags spell out the whole store; the extractor is what differs
        label = (f"{r['a']} vs {r['b']}" if r.get("a") else
                 f"{r['model']}: {r['features'].split('-ft')[0]} vs "
                 f"{r['reference'].split('-ft')[0]}")
        out.append([label, r["metric"], fmt.pm(r["a mean"], r["a sd"]),
                    fmt.pm(r["b mean"], r["b sd"]), fmt.signed(r["difference"]),
                    f"{r['won']} / {r['lost']} of {r['pairs']}", fmt.p_value(r["paired t p"])])
    return fmt.table(["a vs b", "metric", "a: mean ± sd", "b: mean ± sd", "a - b",
                      "pairs a won / lost", "paired t p"], out)


@block("significant")
def significant(ctx: Context, path: str, short: str = "") -> str:
    """The sentence naming every comparison whose Holm-adjusted p is below the level
    (``short``: difference and adjusted p only, for README)."""
    rows = ctx.table(path)
    if not rows:
        raise ReportError(f"{path}: missing")
    if short:
        return _significant_short(rows)
    found = []
    for r in rows:
        tests = [name for name, col in (("the t-test over runs", "paired t p (Holm)"),
                                        ("the bootstrap over test items", "bootstrap p (Holm)"))
                 if to_float(r.get(col)) < ALPHA]
        if tests:
            found.append(
                f"{r['a']} vs {r['b']} {_split_name(r['split'])} "
                f"({fmt.signed(r['difference'])}, {r['won']} of {r['pairs']} runs won; "
                f"bootstrap p {fmt.p_value(r['bootstrap p (test items)'])}, Holm "
                f"{fmt.p_value(r['bootstrap p (Holm)'])}; t p "
                f"{fmt.p_value(r['paired t p'])}, Holm {fmt.p_value(r['paired t p (Holm)'])}; "
                f"by {' and '.join(tests)})")
    family = f"{len(rows)} comparisons"
    if not found:
        return (f"After Holm's adjustment over the {family}, no difference is significant "
                f"at {ALPHA} by either test.")
    return (f"After Holm's adjustment over the {family}, {len(found)} "
            f"difference{'s stand' if len(found) > 1 else ' stands'}: "
            + "; ".join(found) + ". Every other raw p below the level is not significant "
            "once the scan over the family is counted.")


def _significant_short(rows) -> str:
    found = []
    for r in rows:
        holm = min(to_float(r.get("paired t p (Holm)")), to_float(r.get("bootstrap p (Holm)")))
        if holm < ALPHA:
            verb = "above" if to_float(r["difference"]) > 0 else "below"
            found.append(f"{r['a']} {verb} {r['b']} {_split_name(r['split'])} "
                         f"({fmt.signed(r['difference'])}, Holm p {fmt.p_value(holm)})")
    if not found:
        return f"no difference survives Holm's adjustment over the {len(rows)} comparisons."
    return (f"of the {len(rows)} comparisons, {len(found)} survive Holm's adjustment: "
            + " and ".join(found) + ".")


# --------------------------------------------------------------------------- P1

def _p1_paper(config: str) -> tuple[str, str]:
    paper = fusion.PAPER_ACC_AUC.get(config)
    if not paper:
        return "-", "-"
    return (f"{fmt.num(paper[0])} / {fmt.num(paper[1], 2)}",
            f"{fmt.num(paper[2])} / {fmt.num(paper[3], 2)}")


@block("p1.table")
def p1_table(ctx: Context, folder: str = "results/fusion", full: str = "") -> str:
    """P1's Tables 3.1 / 3.3 (mean ± sd over runs) beside the paper's accuracy / AUC."""
    test = ctx.table(f"{folder}/table_3_1.csv")
    cross = fmt.by(ctx.table(f"{folder}/table_3_3.csv"), "model")
    if not test:
        raise ReportError(f"{folder}/table_3_1.csv: missing")
    header = ["configuration", *(["bases", "trainable params"] if full else []),
              "Acc", "ROC AUC", "cross Acc", "cross ROC AUC", "paper Acc / AUC",
              "paper cross Acc / AUC"]
    rows = []
    for r in test:
        c = cross.get(r["model"], {})
        paper = _p1_paper(r["model"])
        bases = "from scratch" if r.get("bases") == "from scratch" else "frozen single models"
        rows.append([r["model"], *([bases, fmt.count(r["Trainable parameters"])] if full else []),
                     fmt.pm(r["Acc"], r["Acc sd"]), fmt.pm(r["ROC AUC"], r["ROC AUC sd"]),
                     fmt.pm(c.get("Acc"), c.get("Acc sd")),
                     fmt.pm(c.get("ROC AUC"), c.get("ROC AUC sd")), *paper])
    return fmt.table(header, rows)


@block("p1.scratch")
def p1_scratch(ctx: Context, folder: str = "results/fusion/scratch_3_epochs") -> str:
    """The earlier 3-epoch end-to-end run (one run, generator version 1)."""
    test = ctx.table(f"{folder}/table_3_1.csv")
    cross = fmt.by(ctx.table(f"{folder}/table_3_3.csv"), "model")
    rows = []
    for r in test:
        c = cross.get(r["model"], {})
        rows.append([r["model"], fmt.count(r["Parameters"]),
                     f"{to_float(r['Training seconds']):.0f}", fmt.num(r["Acc"]),
                     fmt.num(r["ROC AUC"]), fmt.num(c.get("Acc")), fmt.num(c.get("ROC AUC")),
                     *_p1_paper(r["model"])])
    return fmt.table(["configuration", "parameters", "train s", "Acc", "ROC AUC", "cross Acc",
                      "cross ROC AUC", "paper Acc / AUC", "paper cross Acc / AUC"], rows)


# --------------------------------------------------------------------------- P2

#: Table 3's families: the grid folder whose summary holds each family's spread.
P2_FAMILIES = {"Custom CNN": "custom_cnn", "InceptionV3": "inception", "LSTM": "sequence",
               "GRU": "sequence", "MLP": "sequence"}


@block("p2.table3")
def p2_table3(ctx: Context) -> str:
    """Each family's model for Table 3: ours (mean ± sd of A_v) beside the paper's pick."""
    table = {r["metric"]: r for r in ctx.table("results/p2/table_3.csv")}
    if not table:
        raise ReportError("results/p2/table_3.csv: missing")
    rows = []
    for family, folder in P2_FAMILIES.items():
        ours = table["model"].get(family, "")
        summary = fmt.by(ctx.table(f"results/p2/{folder}/summary.csv"), "config")
        sd = summary.get(ours, {}).get("A_v_std")
        rows.append([family, f"{ours}, {fmt.pm(table['A_v'][family], sd)}",
                     f"{table['model'][family + ' (paper)']}, "
                     f"{fmt.num(table['A_v'][family + ' (paper)'])}"])
    return fmt.table(["family", "chosen by our selection rule, A_v (mean ± sd of 3)",
                      "the paper's pick, A_v"], rows)


@block("p2.inception")
def p2_inception(ctx: Context, folder: str = "results/p2/inception") -> str:
    """An unfreezing study's options (``folder``'s summary.csv): InceptionV3's, or the
    same protocol on another network (``results/p2/lite0_unfreeze``)."""
    summary = ctx.table(f"{folder}/summary.csv")
    if not summary:
        return f"`{folder}/summary.csv`: {fmt.NOT_MEASURED}."
    trainable = {r["config"]: r.get("trainable_params")
                 for r in ctx.table(f"{folder}/runs.csv")}
    rows = [[r["config"], fmt.count(trainable.get(r["config"])),
             fmt.num(r["A_t_mean"]), fmt.pm(r["A_v_mean"], r["A_v_std"]), fmt.num(r["L_v_mean"]),
             fmt.num(r["L_r_Lv_mean"], 1), f"{to_float(r['T_s_mean']):.0f}"]
            for r in summary]
    return fmt.table(["option", "trainable params", "A_t", "A_v (mean ± sd of 3)", "L_v",
                      "epoch of best L_v", "T_s"], rows)


@block("p2.sequence")
def p2_sequence(ctx: Context) -> str:
    """LSTM / GRU / MLP: the chosen head, the family's A_v range and mean, the paper's pick."""
    table = {r["metric"]: r for r in ctx.table("results/p2/table_3.csv")}
    summary = ctx.table("results/p2/sequence/summary.csv")
    rows = []
    for family in ("LSTM", "GRU", "MLP"):
        chosen = table["model"][family]
        members = [r for r in summary if r.get("family") == family.lower()]
        values = [to_float(r["A_v_mean"]) for r in members]
        pick = fmt.by(members, "config").get(chosen, {})
        rows.append([family, chosen, fmt.num(pick.get("A_v_mean")),
                     f"{fmt.span(values, 3)} ({fmt.num(sum(values) / len(values))})",
                     f"{to_float(pick.get('N_p_mean')) / 1e6:.2f} M",
                     f"{to_float(pick.get('T_s_mean')):.0f} s",
                     f"{table['model'][family + ' (paper)']}, "
                     f"{fmt.num(table['A_v'][family + ' (paper)'])}"])
    return fmt.table(["family", "chosen by our rule", "A_v (mean of 3)",
                      "A_v range over the family (family mean)", "N_p", "T_s",
                      "paper's pick, A_v"], rows)


# --------------------------------------------------------------------------- P3

@block("p3.table")
def p3_table(ctx: Context, folder: str = "results/p3", full: str = "") -> str:
    """P3's Tables 5-7 (mean ± sd over runs), test and cross, beside the paper's."""
    test = ctx.table(f"{folder}/table_5_6_7.csv")
    cross = fmt.by(ctx.table(f"{folder}/table_5_6_7_cross.csv"), "model")
    names = {"xception": "xception (per-frame warm-up, frames averaged)",
             "convlstm_cbam": "convlstm_cbam (the paper's)"}
    header = ["model", *(["parameters", "train s"] if full else []), "AUC", "Acc",
              *(["F1"] if full else []), "cross AUC", "cross Acc", "paper AUC / Acc"]
    rows = []
    for r in test:
        c = cross.get(r["model"], {})
        paper = f"{fmt.num(r['paper AUC'])} / {fmt.num(r['paper Accuracy'])}"
        rows.append([names.get(r["model"], r["model"]),
                     *([fmt.count(r["Parameters"]), f"{to_float(r['Training seconds']):.0f}"]
                       if full else []),
                     fmt.pm(r["AUC"], r["AUC sd"]), fmt.pm(r["Accuracy"], r["Accuracy sd"]),
                     *([fmt.num(r["F1"])] if full else []),
                     fmt.pm(c.get("AUC"), c.get("AUC sd")),
                     fmt.pm(c.get("Accuracy"), c.get("Accuracy sd")), paper])
    return fmt.table(header, rows)


@block("p3.gradcam")
def p3_gradcam(ctx: Context, folder: str = "results/p3") -> str:
    """Grad-CAM mass in the forgery mask: clips as the unit, per-run tests beside."""
    rows = [[r["model"], fmt.num(r["fake mass in mask"], 2),
             fmt.num(r["real mass in twin mask"], 2), fmt.num(r["mask area"], 2),
             f"{r['clips above twin']} of {r['clips']}", fmt.p_value(r["clip p"]),
             r["run p"], f"{r['fake above twin']} of {r['twin pairs']}",
             fmt.p_value(r["paired p"]), r["on_forgery"]]
            for r in ctx.table(f"{folder}/gradcam_mask_mass.csv")]
    return fmt.table(["model", "fake mass in mask", "real twin's mass", "mask area",
                      "clips above twin", "clip p (the verdict's)", "p per run",
                      "(clip, run) pairs above", "pooled-pairs p (pseudo-replicated)",
                      "verdict"], rows)


# --------------------------------------------------------------------------- P4

def _p4_mean_rows(ctx: Context) -> list[list[str]]:
    rows = []
    lstm = {r["config"]: r for r in ctx.table("results/p4/table_4.csv") if r["PoI"] == "mean"}
    names = {"lstm-2x512": "A: LSTM 2x512", "lstm-2x256": "B: LSTM 2x256",
             "lstm-3x128": "C: LSTM 3x128"}
    for config, r in lstm.items():
        rows.append([names.get(config, r["Model"]), fmt.num(r["Train Acc"]), fmt.num(r["Val Acc"]),
                     fmt.num(r["Test Acc"]), fmt.num(r["Test ROC AUC"]),
                     fmt.num(r["Video Acc (majority vote)"]), fmt.num(r["Paper Test Acc"])])
    segment = {r["config"]: r for r in ctx.table("results/p4/segment_metrics.csv")
               if r.get("PoI") == "mean"}
    for r in ctx.table("results/p4/table_5.csv"):
        if r["PoI"] != "mean" or r["config"] in lstm:
            continue
        auc = segment.get(r["config"], {}).get("ROC AUC")
        rows.append([f"{r['Model']} (Table 5)", fmt.num(r["Training Accuracy"]),
                     fmt.num(r["Validation Accuracy"]), fmt.num(r["Testing Accuracy"]),
                     fmt.num(auc), fmt.num(r["Video Accuracy (majority vote)"]),
                     fmt.num(r["Paper Testing"])])
    for r in ctx.table("results/p4/table_6.csv"):
        if r["PoI"] != "mean" or r["config"] in lstm:
            continue
        rows.append([f"{r['Model']} (Table 6)", "-", "-", fmt.num(r["Testing Accuracy"]),
                     fmt.num(r["Test ROC AUC"]), fmt.num(r["Video Accuracy (majority vote)"]),
                     fmt.num(r["Paper Testing"])])
    return rows


@block("p4.table")
def p4_table(ctx: Context) -> str:
    """Every P4 model, mean of the PoIs (one run each), beside the paper's test accuracy;
    the test accuracy's Wilson interval over the PoIs' test movements pooled."""
    from dfdetect.evaluation import wilson_interval  # deferred: sklearn (0.5 s), one block

    segment = [r for r in ctx.table("results/p4/segment_metrics.csv") if r.get("PoI") != "mean"]
    pooled = {}
    for r in segment:
        n = to_float(r["n"])
        hits, total = pooled.get(r["config"], (0.0, 0.0))
        pooled[r["config"]] = (hits + round(to_float(r["Acc"]) * n), total + n)
    configs = ["lstm-2x512", "lstm-2x256", "lstm-3x128", *[
        r["config"] for r in ctx.table("results/p4/table_5.csv")
        if r["PoI"] == "mean" and not r["config"].startswith("lstm")], *[
        r["config"] for r in ctx.table("results/p4/table_6.csv")
        if r["PoI"] == "mean" and not r["config"].startswith("lstm")]]
    rows = []
    for config, row in zip(configs, _p4_mean_rows(ctx)):
        hits, total = pooled.get(config, (0, 0))
        _, low, high = wilson_interval(int(hits), int(total))
        rows.append([*row[:4], f"[{fmt.num(low, 2)}, {fmt.num(high, 2)}] of {int(total)}",
                     *row[4:]])
    return fmt.table(["model (mean of 3 PoIs, one run each)", "train acc", "val acc",
                      "test acc", "95 % CI, test movements", "test AUC",
                      "video acc (majority vote)", "paper test acc"], rows)


@block("p4.fig8")
def p4_fig8(ctx: Context) -> str:
    """Fig. 8's optimizers over the PoIs' curves: where each ended and its best epoch."""
    rows = []
    curves = [(poi, r) for poi in ("poi0", "poi1", "poi2")
              for r in ctx.table(f"results/p4/{poi}/curves.csv")
              if r["config"].startswith("fig8-")]
    for label in dict.fromkeys(r["label"] for _, r in curves):
        mine = [(poi, r) for poi, r in curves if r["label"] == label]
        last = {}
        for poi, r in mine:
            last[poi] = r
        rows.append([label, fmt.span((r["loss"] for r in last.values()), 2),
                     fmt.span((r["val_accuracy"] for _, r in mine), 2),
                     fmt.span((max(to_float(r["val_accuracy"]) for p, r in mine if p == poi)
                               for poi in last), 2)])
    return fmt.table(["optimizer", "final training loss (PoIs)",
                      "validation accuracy over the epochs", "best validation accuracy (PoIs)"],
                     rows)


@block("p4.per_poi")
def p4_per_poi(ctx: Context) -> str:
    """Test accuracy of every model on each PoI (its test movements) and their mean."""
    acc: dict[str, dict[str, str]] = {}
    n = {}
    for path, column in (("results/p4/table_5.csv", "Testing Accuracy"),
                         ("results/p4/table_4.csv", "Test Acc"),
                         ("results/p4/table_6.csv", "Testing Accuracy")):
        for r in ctx.table(path):
            name = {"lstm-2x512": "A: LSTM 2x512 (proposed)", "lstm-2x256": "B: LSTM 2x256",
                    "lstm-3x128": "C: LSTM 3x128"}.get(r["config"], r["Model"])
            acc.setdefault(name, {}).setdefault(r["PoI"], r[column])
    for r in ctx.table("results/p4/segment_metrics.csv"):
        if r.get("PoI") != "mean" and r.get("n"):
            n[r["PoI"]] = r["n"]
    pois = sorted({p for v in acc.values() for p in v if p != "mean"})
    header = ["model", *[f"{p} ({n[p]} movements)" if p in n else p for p in pois], "mean"]
    return fmt.table(header, [[m, *[fmt.num(v.get(p)) for p in pois], fmt.num(v.get("mean"))]
                              for m, v in acc.items()])


# --------------------------------------------------------------------------- P5

P5_NAMES = {"svm": "SVM (RBF)", "random_forest": "random forest", "mlp": "MLP",
            "bagging": "bagging", "gradient_boosting": "gradient boosting",
            "adaboost": "AdaBoost", "stacking": "stacking"}


@block("p5.cv")
def p5_cv(ctx: Context) -> str:
    """P5's cross-validated classifiers and ensembles (mean ± sd over the folds)."""
    rows = [[P5_NAMES.get(r["model"], r["model"]), fmt.pm(r["Accuracy_mean"], r["Accuracy_std"]),
             fmt.pm(r["AUC_mean"], r["AUC_std"])] for r in ctx.table("results/p5/cv.csv")]
    rows.append(["the paper (its whole framework, on fake videos it made with GANs)",
                 fmt.num(deepforense.PAPER_ACCURACY), "-"])
    return fmt.table(["model", "accuracy", "AUC"], rows)


# --------------------------------------------------------------------------- settings

@block("setting")
def setting(ctx: Context, where: str, attribute: str) -> str:
    """A setting, read where the code reads it (inline): ``setting cpu repeats`` is
    ``scales.SCALES["cpu"].repeats``; ``setting ann_comparison:paper cnn_epochs`` is
    ``papers.ann_comparison.SETTINGS["paper"].cnn_epochs``. A tuple is written ``a / b``."""
    module, _, scale = where.rpartition(":")
    if module:
        holder = importlib.import_module(f"dfdetect.papers.{module}").SETTINGS[scale]
    else:
        holder = SCALES[scale]
    value = getattr(holder, attribute)
    if isinstance(value, (tuple, list)):
        return " / ".join(str(v) for v in value)
    return str(value)


@block("paper")
def paper_number(ctx: Context, module: str, path: str, digits: str = "3") -> str:
    """A number the paper reports, from its module's constants (inline):
    ``paper deepforense PAPER_ACCURACY``, ``paper fusion PAPER_ACC_AUC.xception.1``."""
    value = importlib.import_module(f"dfdetect.papers.{module}")
    name, *keys = path.split(".")
    value = getattr(value, name)
    for key in keys:
        value = value[int(key)] if isinstance(value, (tuple, list)) else value[key]
    return fmt.num(value, int(digits))


@block("p2.custom_cnn")
def p2_custom_cnn(ctx: Context) -> str:
    """The custom-CNN grid, best A_v first: A_v mean ± sd of the repeats, L_v, N_p, T_s."""
    rows = sorted(ctx.table("results/p2/custom_cnn/summary.csv"),
                  key=lambda r: -to_float(r["A_v_mean"]))
    return fmt.table(["configuration", "A_v (mean ± sd of 3)", "L_v", "N_p", "T_s"],
                     [[r["config"], fmt.pm(r["A_v_mean"], r["A_v_std"]), fmt.num(r["L_v_mean"]),
                       f"{to_float(r['N_p_mean']) / 1e6:.2f} M",
                       f"{to_float(r['T_s_mean']):.0f} s"] for r in rows])


@block("p2.heads_vs_extractor")
def p2_heads_vs_extractor(ctx: Context) -> str:
    """How many sequence heads beat the per-frame InceptionV3 whose features they read."""
    table = {r["metric"]: r for r in ctx.table("results/p2/table_3.csv")}
    extractor = to_float(table["A_v"]["InceptionV3"])
    heads = [to_float(r["A_v_mean"]) for r in ctx.table("results/p2/sequence/summary.csv")]
    above = sum(a > extractor for a in heads)
    below = sum(a < extractor for a in heads)
    return (f"{above} of the {len(heads)} heads are above the per-frame InceptionV3 whose "
            f"features they read ({fmt.num(extractor)}) and {below} below")
