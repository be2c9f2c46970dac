"""A clone holds every document its code and docs cite, and every link in the docs resolves."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def tracked(*suffixes: str) -> list[Path]:
    out = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.split()
    if not out:  # not a git checkout (an sdist): walk the tree
        out = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*") if p.is_file()]
    return [ROOT / f for f in out if f.endswith(suffixes) and (ROOT / f).exists()]


# A design note cited without the repo's docs/ in front of it, or the old notes' folder.
# (The notes' folder name is spelled in two parts so this file does not match itself.)
OUTSIDE = re.compile("shared" + r"/design|(?<![\w/])(runtime-api|architecture|landscape)\.md")


@pytest.mark.parametrize(
    "path",
    tracked(".py", ".c", ".h"),
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_code_cites_only_documents_in_the_repo(path: Path) -> None:
    text = path.read_text(encoding="utf-8", errors="replace")
    bad = [m.group(0) for m in OUTSIDE.finditer(text)]
    assert not bad, f"{path.relative_to(ROOT)} cites {bad}: cite docs/<file>.md"
    for cited in set(re.findall(r"docs/[\w-]+\.md", text)):
        assert (ROOT / cited).exists(), f"{path.relative_to(ROOT)} cites missing {cited}"


LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def anchors(markdown: Path) -> set[str]:
    text = markdown.read_text(encoding="utf-8")
    found = set(re.findall(r'<a id="([^"]+)"', text))
    for heading in re.findall(r"^#+\s+(.*)$", text, flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        found.add(slug)
    return found


@pytest.mark.parametrize("path", tracked(".md"), ids=lambda p: str(p.relative_to(ROOT)))
def test_markdown_links_resolve(path: Path) -> None:
    for target in LINK.findall(path.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target) or target.startswith("mailto:"):
            continue  # an absolute URL
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        assert dest.exists(), f"{path.relative_to(ROOT)} links to missing {target}"
        assert ROOT in dest.parents or dest == ROOT, f"{target} leaves the repository"
        if anchor and dest.suffix == ".md":
            assert anchor in anchors(dest), f"{path.relative_to(ROOT)}: no #{anchor} in {dest}"
