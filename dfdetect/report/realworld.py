"""Blocks of the real-deepfake evaluation (README, results/realworld/README.md, model card).

Every number comes from ``results/realworld/``: a ``comparison.csv`` / ``paired.csv`` that
:mod:`dfdetect.comparison` wrote (any folder below it) where one holds the model, else the
same statistics computed here from the model's committed ``scores.csv`` with the same
seeded bootstrap; ``summary.csv`` for the ranges of the reproductions. A model without
an evaluation yet writes "not yet measured" instead of failing, so a document can name
a detector before its scores are committed.
"""

from __future__ import annotations

import math

from dfdetect.report import Context, ReportError, block
from dfdetect.report import fmt
from dfdetect.results import to_float

ROOT = "results/realworld"
#: The subsets a model's rows show, in order, where they hold both classes.
SUBSETS = {"all": "all videos", "ffpp": "FaceForensics++",
           "ffpp_c23": "FaceForensics++ c23", "ffpp_c40": "FaceForensics++ c40",
           "test": "Celeb-DF + DFDC"}
#: Friendly names of the evaluated folders.
NAMES = {"default": "`default` (the shipped detector)",
         "default_v1_scratch": "`default_v1_scratch` (the first release's detector, from "
                               "scratch)",
         "mesonet_Meso4_DF": "`mesonet_Meso4_DF` (MesoNet authors' weights, trained on Deepfakes)",
         "mesonet_Meso4_F2F": "`mesonet_Meso4_F2F` (MesoNet authors' weights, trained on "
                              "Face2Face)"}


def _clips(ctx: Context, model: str):
    from dfdetect.comparison import read_scores  # deferred: sklearn, matplotlib

    path = f"{ROOT}/{model}/scores.csv"
    if not ctx.exists(path):
        return None
    return read_scores(ctx.root / path)


def _committed(ctx: Context, name: str) -> dict[tuple, dict]:
    """Rows of every committed ``comparison.csv`` (or ``paired.csv``) under ROOT, keyed by
    (model, subset) or (model, reference, subset); the largest evaluation wins."""
    found: dict[tuple, dict] = {}
    for path in ctx.glob(f"{ROOT}/**/{name}"):
        for r in ctx.table(path):
            key = ((r["model"], r["reference"], r["subset"]) if "reference" in r
                   else (r["model"], r["subset"]))
            if to_float(r.get("n_scored")) >= _n(found.get(key)):
                found[key] = r
    return found


def _n(row) -> float:
    """Clips a committed row scored; -1 for none, so any evaluation beats it."""
    n = to_float((row or {}).get("n_scored"))
    return n if math.isfinite(n) else -1.0


def subset_rows(ctx: Context, model: str) -> dict[str, dict]:
    """Subset -> :data:`dfdetect.comparison.COMPARISON_COLUMNS` row of one model."""
    committed = {s: r for (m, s), r in _committed(ctx, "comparison.csv").items() if m == model}
    clips = _clips(ctx, model)
    if clips is not None:
        from dfdetect.comparison import subset_row, subsets  # deferred: sklearn, matplotlib

        by_name = {c["name"]: c for c in clips}
        for subset, members in subsets(clips).items():
            row = subset_row(model, subset, [by_name[n] for n in members])
            # a committed comparison of as many clips is the same numbers, written once
            if _n(committed.get(subset)) < row["n_scored"]:
                committed[subset] = row
    return committed


def both_classes(row) -> bool:
    """Whether a subset row has reals and fakes (an AUC needs both)."""
    return row is not None and to_float(row["n_real"]) > 0 and to_float(row["n_fake"]) > 0


def shown_subsets(found: dict[str, dict]) -> list[str]:
    """The :data:`SUBSETS` worth a row: both classes, and c23 / c40 only when the set has
    both compressions (else they repeat the FaceForensics++ row)."""
    both_comp = "ffpp_c23" in found and "ffpp_c40" in found
    return [s for s in SUBSETS if both_classes(found.get(s))
            and (both_comp or s not in ("ffpp_c23", "ffpp_c40"))]


def chance_p(row) -> float:
    """One-sided chance that a no-skill model reaches the row's AUC (normal tail)."""
    from dfdetect.evaluation import auc_chance_p  # deferred: sklearn

    return auc_chance_p(to_float(row.get("video_auc")), int(to_float(row.get("n_fake"))),
                        int(to_float(row.get("n_real"))))


@block("realworld.models")
def models(ctx: Context, *names: str) -> str:
    """The named models on each subset: n, AUC with its 95 % bootstrap interval,
    accuracy at the model's threshold with its Wilson interval, the always-FAKE rate,
    balanced accuracy and the chance of a no-skill model reaching that AUC."""
    if not names:
        raise ReportError("realworld.models needs model folder names")
    rows = []
    for model in names:
        found = subset_rows(ctx, model)
        if not found:
            rows.append([NAMES.get(model, f"`{model}`"), fmt.NOT_MEASURED, *["-"] * 6])
            continue
        for subset in shown_subsets(found):
            r, label = found[subset], SUBSETS[subset]
            rows.append([NAMES.get(model, f"`{model}`") if subset == "all" else "",
                         f"{label}: {fmt.count(r['n_real'])} / {fmt.count(r['n_fake'])}",
                         fmt.interval(r["video_auc"], r["auc_low"], r["auc_high"]),
                         fmt.p_value(chance_p(r)),
                         fmt.interval(r["accuracy"], r["acc_low"], r["acc_high"]),
                         fmt.num(r["always_fake_acc"], 2), fmt.num(r["balanced_accuracy"], 2)])
    return fmt.table(["model", "subset: real / fake videos", "video ROC AUC [95 % CI]",
                      "chance p", "accuracy [95 % CI]", "always-FAKE accuracy",
                      "balanced accuracy"], rows)


@block("realworld.methods")
def methods(ctx: Context, model: str) -> str:
    """One model per manipulation method: that method's fakes against its dataset's reals."""
    found = subset_rows(ctx, model)
    rows = [[s.split(":", 1)[1], f"{fmt.count(r['n_real'])} / {fmt.count(r['n_fake'])}",
             fmt.interval(r["video_auc"], r["auc_low"], r["auc_high"])]
            for s, r in sorted(found.items(), key=lambda kv: -to_float(kv[1]["video_auc"]))
            if s.startswith("method:") and both_classes(r)]
    if not rows:
        return f"Per-method results of `{model}`: {fmt.NOT_MEASURED}."
    return fmt.table(["method", "real / fake videos", "video ROC AUC [95 % CI]"], rows)


def paired(ctx: Context, model: str, reference: str, subset: str = "all"):
    """(difference, low, high, p, n) of AUC(model) - AUC(reference) on the same clips."""
    committed = _committed(ctx, "paired.csv").get((model, reference, subset))
    a, b = _clips(ctx, model), _clips(ctx, reference)
    if a is not None and b is not None:
        # deferred: sklearn, matplotlib
        from dfdetect.comparison import subsets
        from dfdetect.evaluation import paired_auc_interval

        a, b = {c["name"]: c for c in a}, {c["name"]: c for c in b}
        members = subsets(list(a.values())).get(subset, [])
        both = [n for n in members if n in b and math.isfinite(a[n]["score"])
                and math.isfinite(b[n]["score"])]
        if both and _n(committed) < len(both):
            diff, lo, hi, p = paired_auc_interval([a[n]["label"] for n in both],
                                                  [a[n]["score"] for n in both],
                                                  [b[n]["score"] for n in both])
            return diff, lo, hi, p, len(both)
    if committed:
        return (to_float(committed["auc_difference"]), to_float(committed["diff_low"]),
                to_float(committed["diff_high"]), to_float(committed["p"]),
                int(to_float(committed["n_scored"])))
    return None


@block("realworld.paired")
def paired_phrase(ctx: Context, model: str, reference: str, subset: str = "all") -> str:
    """``+0.08 [-0.17, +0.33], p 0.52, 32 videos`` (paired bootstrap on the same clips)."""
    found = paired(ctx, model, reference, subset)
    if found is None:
        return fmt.NOT_MEASURED
    diff, lo, hi, p, n = found
    return (f"{fmt.signed(diff, 2)} [{fmt.signed(lo, 2)}, {fmt.signed(hi, 2)}], "
            f"p {fmt.p_value(p)}, {n} videos")


@block("realworld.auc")
def auc_phrase(ctx: Context, model: str, subset: str = "all") -> str:
    """``0.65 [0.45, 0.83]`` for one model and subset (inline)."""
    r = subset_rows(ctx, model).get(subset)
    if r is None:
        return fmt.NOT_MEASURED
    return fmt.interval(r["video_auc"], r["auc_low"], r["auc_high"])


@block("realworld.set")
def set_phrase(ctx: Context, model: str = "default") -> str:
    """What the evaluation set holds, counted from one model's scores.csv."""
    clips = _clips(ctx, model)
    if clips is None:
        return fmt.NOT_MEASURED
    names = {"ffpp": "FaceForensics++", "celebdf": "Celeb-DF v2", "dfdc": "DFDC"}
    parts = []
    for source in sorted({c["source"] for c in clips}, key=lambda s: list(names).index(s)
                         if s in names else len(names)):
        mine = [c for c in clips if c["source"] == source]
        real = sum(c["label"] == 0 for c in mine)
        fake = len(mine) - real
        methods_ = sorted({c["method"] for c in mine if c["label"] == 1})
        text = f"{names.get(source, source)}: {real} real, {fake} fake"
        if len(methods_) > 1:
            text += f" of {len(methods_)} methods"
        comps = sorted({c["compression"] for c in mine})
        if source == "ffpp" and len(comps) > 1:
            text += " (" + ", ".join(f"{sum(c['compression'] == k for c in mine)} at {k}"
                                     for k in comps) + ")"
        parts.append(text)
    return f"{len(clips)} videos ({'; '.join(parts)})"


@block("realworld.chance_sd")
def chance_sd(ctx: Context, model: str = "default") -> str:
    """The sd of a no-skill model's AUC on the set (``0.107``): how far from 0.5 is noise."""
    r = subset_rows(ctx, model).get("all")
    if r is None:
        return fmt.NOT_MEASURED
    n_real, n_fake = to_float(r["n_real"]), to_float(r["n_fake"])
    sd = math.sqrt((n_real + n_fake + 1) / (12 * n_real * n_fake))
    return f"{sd:.3f} (with {int(n_real)} reals and {int(n_fake)} fakes)"


# --------------------------------------------------------------------------- the reproductions

#: Each family of evaluated reproductions: folder prefix, what it is, where its own test is.
FAMILIES = (
    ("p1_v2_procedural_", "the 11 P1 models of the committed cpu tables (run 1 of 3)",
     "generator 2, drawn faces", ("results/fusion/runs.csv", "repeat=0", "test ROC AUC")),
    ("p3_v2_procedural_", "P3's 3 video models of the committed cpu tables (run 3 of 3)",
     "generator 2, drawn faces", ("results/p3/runs.csv", "repeat=2", "test AUC")),
    ("p1_v3_faces_", "all 11 P1 models, cpu scale, generator 3 with real faces "
     "(`results/generator3/fusion/`)", "generator 3, real faces",
     ("results/generator3/fusion/table_3_1.csv", "", "ROC AUC")),
    ("p3_v3_faces_", "P3's 4 models (the per-frame Xception and the 3 video models), same "
     "data (`results/generator3/p3/`)", "generator 3, real faces",
     ("results/generator3/p3/table_5_6_7.csv", "", "AUC")),
    ("p2_v3_faces_", "P2's chosen InceptionV3, same data (`results/generator3/p2_inception/`)",
     "generator 3, real faces",
     ("results/generator3/p2_inception/summary.csv", "", "A_v_mean")),
)


def _own(ctx: Context, source: tuple[str, str, str], prefix: str) -> list[float]:
    path, where, column = source
    rows = ctx.table(path)
    if where:
        key, _, value = where.partition("=")
        rows = [r for r in rows if r.get(key) == value]
    if prefix.startswith("p3_v2"):  # the three video models, not the warm-up
        rows = [r for r in rows if r.get("config") != "xception"]
    return [to_float(r.get(column)) for r in rows]


def family_rows(ctx: Context, prefix: str) -> list[dict]:
    """The summary.csv rows of one family of evaluated folders."""
    return [r for r in ctx.table(f"{ROOT}/summary.csv") if r["model"].startswith(prefix)]


@block("realworld.families")
def families(ctx: Context) -> str:
    """The reproductions scored on real deepfakes: their own-benchmark test and the
    realworld range, per family (``summary.csv``)."""
    out = []
    for prefix, what, trained, source in FAMILIES:
        rows = family_rows(ctx, prefix)
        if not rows:
            continue
        aucs = [to_float(r["video_auc"]) for r in rows]
        own = "validation accuracy" if source[2] == "A_v_mean" else "test AUC"
        best = max(rows, key=lambda r: to_float(r["video_auc"]))
        n = sorted({r["n_videos"] for r in rows})
        out.append([f"`{prefix}<model>`: {what}", f"{trained} (own {own} "
                    f"{fmt.span(_own(ctx, source, prefix))})", "/".join(n),
                    f"{fmt.span(aucs)} (median {fmt.num(sorted(aucs)[len(aucs) // 2], 2)})",
                    f"{fmt.num(best['video_auc'], 2)}, p {fmt.p_value(best['video_auc_p'])}",
                    fmt.span(r["video_acc"] for r in rows)])
    return fmt.table(["models (`results/realworld/<name>/`)", "trained on", "videos",
                      "video ROC AUC", "best, its chance p alone", "accuracy"], out)


@block("realworld.family_span")
def family_span(ctx: Context, *prefixes: str) -> str:
    """``0.30-0.73`` over the named families' video AUCs, with their mean (inline)."""
    rows = [r for p in prefixes for r in family_rows(ctx, p)]
    if not rows:
        return fmt.NOT_MEASURED
    aucs = [to_float(r["video_auc"]) for r in rows]
    if len(aucs) == 1:
        return fmt.num(aucs[0], 2)
    return f"{fmt.span(aucs)} (mean {fmt.num(sum(aucs) / len(aucs), 2)}, {len(aucs)} models)"


@block("realworld.best_of")
def best_of(ctx: Context, *prefixes: str) -> str:
    """The best of the named families, its AUC, its chance p alone and as the best of N."""
    rows = [r for p in prefixes for r in family_rows(ctx, p)]
    if not rows:
        return fmt.NOT_MEASURED
    best = max(rows, key=lambda r: to_float(r["video_auc"]))
    p = to_float(best["video_auc_p"])
    return (f"`{best['model']}` at {fmt.num(best['video_auc'], 3)} (chance p {fmt.p_value(p)} "
            f"alone, {fmt.p_value(1 - (1 - p) ** len(rows))} as the best of {len(rows)})")



@block("realworld.summary")
def summary_phrase(ctx: Context, model: str = "default", subset: str = "all") -> str:
    """One model's headline (inline): AUC and accuracy with intervals, the set's size and
    the always-FAKE rate a detector must beat."""
    r = subset_rows(ctx, model).get(subset)
    if r is None:
        return f"({fmt.NOT_MEASURED})"
    return (f"video ROC AUC {fmt.interval(r['video_auc'], r['auc_low'], r['auc_high'])} and "
            f"accuracy {fmt.interval(r['accuracy'], r['acc_low'], r['acc_high'])} (95 % "
            f"intervals) on {fmt.count(r['n_videos'])} videos ({fmt.count(r['n_real'])} real, "
            f"{fmt.count(r['n_fake'])} fake), where calling every video fake scores "
            f"{fmt.num(r['always_fake_acc'], 2)}")


#: Blending-based face swaps (a face pasted in: what a blending-boundary cue can see)
#: and reenactments (the same face re-rendered), by the set's method names.
BLENDED = ("Deepfakes", "DeepFakeDetection", "FaceSwap", "FaceShifter", "Celeb-synthesis",
           "DFDC")
REENACTED = ("Face2Face", "NeuralTextures")


@block("realworld.kinds")
def kinds(ctx: Context, model: str = "default") -> str:
    """Whether the per-method AUCs separate blended swaps from reenactments, said only as
    far as their intervals allow."""
    found = {s.split(":", 1)[1]: r for s, r in subset_rows(ctx, model).items()
             if s.startswith("method:") and both_classes(r)}
    groups = {name: {m: found[m] for m in members if m in found}
              for name, members in (("blended", BLENDED), ("reenacted", REENACTED))}
    if not all(groups.values()):
        return f"Per-kind results of `{model}`: {fmt.NOT_MEASURED}."

    def auc(r, key="video_auc"):
        return to_float(r[key])
    b, e = groups["blended"], groups["reenacted"]
    fakes = sorted(int(to_float(r["n_fake"])) for g in groups.values() for r in g.values())
    text = (f"The blended face swaps ({', '.join(b)}) score "
            f"{fmt.span([auc(r) for r in b.values()])} and the reenactments ({', '.join(e)}) "
            f"{fmt.span([auc(r) for r in e.values()])}, with {fakes[0]}-{fakes[-1]} fakes a "
            "method: ")
    ordered = min(auc(r) for r in b.values()) > max(auc(r) for r in e.values())
    separated = (min(auc(r, "auc_low") for r in b.values())
                 > max(auc(r, "auc_high") for r in e.values()))
    if separated:
        return text + "every swap's interval lies above every reenactment's, so the set " \
                      "shows the detector separating the blended swaps better."
    if ordered:
        return text + "every swap scores above every reenactment, the pattern a " \
                      "blending-boundary cue predicts, but their intervals overlap, so " \
                      "this is a hint, not a finding."
    return text + "the ranges overlap and so do the intervals, so the set does not show " \
                  "which kinds of fake the detector catches."
