"""README, docs/, the results pages and the model card: links resolve inside the
repository, README puts a user's path first and stays short, and nothing points at files
a package user does not have."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
         *sorted((ROOT / "results").glob("*/README.md")),
         ROOT / "dfdetect" / "weights" / "MODEL_CARD.md"]


def _rendered(path: Path) -> str:
    """The text a reader sees: HTML comments (the report markers) removed."""
    return re.sub(r"<!--.*?-->", "", path.read_text(), flags=re.S)


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces -> '-'."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_relative_link_stays_in_the_repository_and_resolves():
    broken = []
    for page in PAGES:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if target.startswith(("http://", "https://")):
                continue
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            if not dest.is_relative_to(ROOT) or not dest.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
            elif anchor and anchor not in {_anchor(h) for h in re.findall(
                    r"^#+ (.*)$", dest.read_text(), re.M)}:
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, broken


def test_readme_starts_with_the_quick_start_and_links_each_papers_results():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert "## Quick start" in lines[:40]
    text = "\n".join(lines)
    for folder in ("fusion", "p2", "p3", "p4", "p5"):
        assert f"(results/{folder}/README.md)" in text
        assert (ROOT / "results" / folder / "README.md").is_file()


def test_readme_shows_the_quick_start_and_the_three_own_data_commands_in_its_first_60_lines():
    first = "\n".join((ROOT / "README.md").read_text().splitlines()[:60])
    assert "dfdetect predict suspicious.mp4" in first
    for command in ("dfdetect data crop mine/ --out stores/mine",
                    "dfdetect train meso4 --data stores/mine",
                    "dfdetect evaluate meso4.keras stores/mine"):
        assert command in first, command


def test_readme_is_read_in_five_minutes():
    assert len(_rendered(ROOT / "README.md").split()) < 3000


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_page_points_at_files_a_package_user_does_not_have(page):
    text = _rendered(page)
    for private in ("../shared", "SPEC.md", "ENVIRONMENT.md", ".venv/bin/dfdetect"):
        assert private not in text, private


def test_readme_terms_are_defined_where_they_first_appear():
    text = _rendered(ROOT / "README.md")
    for term, definition in (("store", "**store**"), ("SBI", "*SBI*"), ("PoI", "**PoI**"),
                             ("A_v", "**A_v**"), ("generator", "**generator**")):
        first = re.search(rf"(?<![\w/]){re.escape(term)}(?!\w)", text)
        assert first is not None, term
        assert text.find(definition) <= first.start() + 2, term


def test_the_architecture_sections_match_the_tree():
    """Every package and module under dfdetect/ is named in README's architecture
    section and in docs/architecture.md, so a new module cannot go unmapped."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Architecture"):readme.index("## Citing")]
    full = (ROOT / "docs" / "architecture.md").read_text()
    package = ROOT / "dfdetect"
    missing = []
    for path in sorted(package.rglob("*.py")):
        if path.name in ("__init__.py", "__main__.py") or "__pycache__" in path.parts:
            continue
        rel = path.relative_to(package)
        top = rel.parts[0] if len(rel.parts) > 1 else rel.name
        if (top if top.endswith(".py") else top + "/") not in section:
            missing.append(f"README: {top}")
        if path.stem not in section and len(rel.parts) > 1 and rel.parts[0] in (
                "data", "synthetic", "models", "detector"):
            missing.append(f"README: {rel}")
        if path.stem not in full:
            missing.append(f"docs/architecture.md: {rel}")
    assert missing == []
