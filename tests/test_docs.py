"""README and the results pages: every link resolves inside the repository."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "results").glob("*/README.md"))]


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
