"""The documents' numbers come from the committed CSVs, and nowhere else.

Three guards: the marker engine does what :mod:`dfdetect.report` says; every committed
document equals what its blocks write now (the drift test: a rerun that changes a CSV
fails here until ``python -m dfdetect.report`` is run and the documents committed); and
outside the generated blocks no document holds a hand-typed result number (the rule is
:data:`RESULT_NUMBER`, its few exceptions :data:`ALLOWED`, each with why it is not a
run's result).
"""

import re
import sys
from pathlib import Path

import pytest

from dfdetect import report
from dfdetect.report import Context, ReportError, render

ROOT = Path(__file__).resolve().parents[1]

#: What counts as a number a run produced, in prose: a decimal with two or more places
#: (metrics, p-values, ratios: 0.85, .646, 3.82), a ± spread, a duration or a memory
#: size (12 s, 39 min, 3,224 MiB, 21.6 GB), or a count of successes ("26 of 36").
RESULT_NUMBER = re.compile(
    r"(?<![\w.])\d*\.\d{2,}(?!\d)"
    r"|±"
    r"|(?<![\w.\-])\d[\d,]*(?:\.\d+)?\s?(?:ms|s|min|h|MiB|GiB|GB|MB)\b"
    r"|(?<![\w.])\d+ of (?:the )?\d+\b")
#: Phrases that match the rule but are not a run's result: document -> {phrase: why}.
ALLOWED = {
    "docs/differences.md": {
        "±20 %": "the paper's own augmentation setting, quoted",
        "Keras' default 0.99": "Keras' BatchNormalization momentum (a library setting)",
    },
    "docs/benchmark.md": {
        "below ROC AUC 0.75": "the pixel baseline's bar (a setting of the check)",
        "should pass 0.85": "Meso-4's bar (a setting of the check)",
    },
    "docs/speed.md": {
        "< 8 GiB": "the memory target (a goal, not a measurement)",
        "< 15 min": "the bench's time target (a goal, not a measurement)",
    },
    "docs/architecture.md": {
        "a line every 30 s": "the progress interval (a setting)",
    },
    "README.md": {
        "a line every 30 s": "the progress interval (a setting)",
    },
    "dfdetect/weights/MODEL_CARD.md": {
        "1.63 M parameters": "the first release's network size (a property of its definition)",
        "3.41 M parameters": "the network's size (a property of its definition)",
        "video AUC >= 0.90": "the bar set for the detector (issue 30's target)",
        ">= 0.85": "the bar set for the detector (issue 30's target)",
        "accuracy >= 0.80": "the bar set for the detector (issue 30's target)",
    },
    "results/p4/README.md": {
        "global norm 0.25": "the paper's gradient clipping (models.sequence.POSE_CLIPNORM)",
    },
    "results/p2/README.md": {
        '"11.1MB"': "the paper's reported file size, quoted",
        '"36.1MB"': "the paper's reported file size, quoted",
        '"120MB"': "the paper's reported file size, quoted",
        "a 0.0514 A_v": "the paper's own gap, quoted",
        "LSTM A_v 0.7052": "the paper's own number, quoted",
        "LSTM 3.15 M": "the paper's own parameter count, quoted",
    },
}


def _prose(text: str) -> str:
    """``text`` without generated blocks, code, comments and link targets."""
    text = re.sub(r"<!-- report:([\w.\-]+)[^>]*-->.*?<!-- /report:\1 -->", " ", text, flags=re.S)
    text = re.sub(r"<!--.*?-->", " ", text, flags=re.S)
    text = re.sub(r"^```.*?^```", " ", text, flags=re.S | re.M)
    text = re.sub(r"`[^`\n]*`", " ", text)
    text = re.sub(r"https?://\S+", " ", text)
    return re.sub(r"\]\([^)]*\)", "]", text)


def _hand_typed(path: Path) -> list[str]:
    text = _prose(path.read_text())
    for phrase in ALLOWED.get(str(path.relative_to(ROOT)), {}):
        text = text.replace(phrase, " ")
    found = []
    for match in RESULT_NUMBER.finditer(text):
        line = text[text.rfind("\n", 0, match.start()) + 1:text.find("\n", match.end())]
        found.append(f"{path.relative_to(ROOT)}: {match.group()!r} in: {line.strip()[:100]}")
    return found


# --------------------------------------------------------------------------- the engine

def test_a_paragraph_block_and_an_inline_block_are_rewritten_in_place(tmp_path):
    (tmp_path / "t.csv").write_text("model,auc\na,0.91234\nb,0.5\n")
    text = ("x <!-- report:cell t.csv model=a auc -->old<!-- /report:cell --> y\n"
            "  <!-- report:span t.csv auc num2 -->\n  stale\n  <!-- /report:span -->\n")
    out = render(text, Context(tmp_path))
    assert out == ("x <!-- report:cell t.csv model=a auc -->0.912<!-- /report:cell --> y\n"
                   "  <!-- report:span t.csv auc num2 -->\n  0.50-0.91\n"
                   "  <!-- /report:span -->\n")
    assert render(out, Context(tmp_path)) == out  # idempotent


def test_quoted_arguments_and_missing_rows_or_blocks_are_errors(tmp_path):
    (tmp_path / "t.csv").write_text("name,\"test AUC\"\nx y,0.7\n")
    ok = '<!-- report:cell t.csv "name=x y" "test AUC" num1 -->?<!-- /report:cell -->'
    assert "-->0.7<!--" in render(ok, Context(tmp_path))
    for bad in ('<!-- report:cell t.csv name=z "test AUC" -->?<!-- /report:cell -->',
                "<!-- report:nosuch -->?<!-- /report:nosuch -->",
                "<!-- report:cell t.csv name=x -->?",  # no closing marker
                "<!-- /report:cell -->"):
        with pytest.raises(ReportError):
            render(bad, Context(tmp_path))


def test_a_block_writes_not_yet_measured_for_an_evaluation_not_committed(tmp_path):
    text = "<!-- report:realworld.auc nothing_here -->?<!-- /report:realworld.auc -->"
    assert "not yet measured" in render(text, Context(tmp_path))


# --------------------------------------------------------------------------- drift

def test_every_document_is_what_its_blocks_write_from_the_committed_csvs():
    """Fails when a CSV changed and the documents were not regenerated: run
    ``python -m dfdetect.report`` and commit the documents."""
    assert report.documents(), "no generated document found"
    assert report.stale_documents() == []


def test_the_documents_hold_the_blocks_the_issue_needs_and_every_block_is_used():
    text = {p.relative_to(ROOT).as_posix(): p.read_text() for p in report.documents()}
    assert {"README.md", "docs/differences.md", "results/realworld/README.md",
            "dfdetect/weights/MODEL_CARD.md", "results/fusion/README.md",
            "results/p3/README.md"} <= set(text)
    used = {m for t in text.values() for m in re.findall(r"<!-- report:([\w.\-]+)", t)}
    assert set(report.BLOCKS) - used == set(), "blocks no document uses"


def test_the_benchmarks_page_is_what_run_all_writes_from_its_csvs():
    sys.path.insert(0, str(ROOT))
    from benchmarks import run_all

    page = ROOT / "results" / "bench"
    assert run_all.render_readme(page) == (page / "README.md").read_text()


def test_check_mode_names_a_drifted_document_and_exits_1(tmp_path, capsys):
    (tmp_path / "results" / "x").mkdir(parents=True)
    (tmp_path / "results" / "x" / "t.csv").write_text("k,v\na,0.5\n")
    page = tmp_path / "results" / "x" / "README.md"
    page.write_text("<!-- report:cell results/x/t.csv k=a v -->0.400<!-- /report:cell -->\n")
    assert report.main(["--check", "--root", str(tmp_path)]) == 1
    assert "results/x/README.md" in capsys.readouterr().out
    assert report.main(["--root", str(tmp_path)]) == 0
    assert "-->0.500<!--" in page.read_text()
    assert report.main(["--check", "--root", str(tmp_path)]) == 0


# --------------------------------------------------------------------------- hand-typed

@pytest.mark.parametrize("path", [p.relative_to(ROOT).as_posix() for p in [
    ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
    *sorted(p for p in (ROOT / "results").glob("*/README.md") if p.parent.name != "bench"),
    ROOT / "dfdetect" / "weights" / "MODEL_CARD.md"]])
def test_no_hand_typed_result_number_outside_the_generated_blocks(path):
    assert _hand_typed(ROOT / path) == []


def test_the_rule_catches_what_it_is_meant_to():
    caught = [m.group() for m in RESULT_NUMBER.finditer(
        "AUC 0.85 and .646, 3.82x; 0.891 ± 0.034; 39 min, 3,224 MiB, 21.6 GB; 26 of 36 pairs")]
    assert caught == ["0.85", ".646", "3.82", "0.891", "±", "0.034", "39 min", "3,224 MiB",
                      "21.6 GB", "26 of 36"]
    assert not list(RESULT_NUMBER.finditer(
        "Adam 1e-3, 64 px, 8 epochs, 3 repeats, 0.9 momentum, P1-P5, 1.3x its side, 2,100 crops"))


def test_every_allowed_phrase_is_still_there():
    """An exception nobody needs any more is removed, so the list stays honest."""
    stale = [f"{doc}: {phrase}" for doc, phrases in ALLOWED.items() for phrase in phrases
             if phrase not in _prose((ROOT / doc).read_text())]
    assert stale == []
