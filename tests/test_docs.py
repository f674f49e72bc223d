"""The documentation stays true to the code: every setting is in docs/configuration.md and every
name there is a setting; every relative link in README.md and docs/*.md reaches a file, and a
heading of it where the link names an anchor; the README's layout map names every package and
module of service/. No database."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

from service.config import Settings

ROOT = Path(__file__).resolve().parent.parent
CONFIGURATION = ROOT / "docs" / "configuration.md"
MARKDOWN = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^#{1,6}\s+(.*?)(?:\s+#+)?\s*$")
_LINK = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_SETTING = re.compile(r"\bCLV_[A-Z0-9_]*[A-Z0-9]\b")
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)  # https:, mailto:, …


def _prose(path: Path) -> list[str]:
    """The lines outside fenced code blocks, where `#` starts a heading rather than a comment."""
    lines: list[str] = []
    fenced = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: link text kept, lower case, punctuation dropped, spaces
    to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    """Every heading's anchor; a repeated one gets -1, -2, … as on GitHub."""
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    for line in _prose(path):
        match = _HEADING.match(line)
        if match is None:
            continue
        slug = _slug(match.group(1))
        count = seen.get(slug, 0)
        anchors.add(slug if count == 0 else f"{slug}-{count}")
        seen[slug] = count + 1
    return anchors


def _environment_names() -> set[str]:
    prefix = Settings.model_config.get("env_prefix") or ""
    return {f"{prefix}{name}".upper() for name in Settings.model_fields}


def _documented_names() -> set[str]:
    text = CONFIGURATION.read_text(encoding="utf-8")
    return {name for name in _SETTING.findall(text) if not name.startswith("CLV_TEST_")}


def test_settings_are_read_with_the_clv_prefix() -> None:
    assert Settings.model_config.get("env_prefix") == "CLV_"
    assert "CLV_DATABASE_URL" in _environment_names()


def test_every_setting_is_documented() -> None:
    missing = sorted(_environment_names() - _documented_names())
    assert not missing, f"settings missing from docs/configuration.md: {missing}"


def test_every_documented_setting_exists() -> None:
    unknown = sorted(_documented_names() - _environment_names())
    assert not unknown, f"docs/configuration.md names settings service.config lacks: {unknown}"


def test_the_anchors_follow_github() -> None:
    assert _slug("Keeping up: learning, drift, fairness, risk") == (
        "keeping-up-learning-drift-fairness-risk"
    )
    assert _slug("`POST /v1/events` (scope `ingest`)") == "post-v1events-scope-ingest"


@pytest.mark.parametrize("path", MARKDOWN, ids=[str(p.relative_to(ROOT)) for p in MARKDOWN])
def test_relative_links_reach_a_file_and_heading(path: Path) -> None:
    broken: list[str] = []
    for target in _LINK.findall("\n".join(_prose(path))):  # link texts may wrap
        if _SCHEME.match(target):
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / unquote(file_part)).resolve() if file_part else path
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
            broken.append(f"{target}: no heading with that anchor in {linked.name}")
    assert not broken, f"broken links in {path.relative_to(ROOT)}: {broken}"


def test_the_readme_links_every_document() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    unlinked = [p.name for p in MARKDOWN[1:] if f"(docs/{p.name})" not in readme]
    assert not unlinked, f"README.md does not link {unlinked}"


def test_the_readme_layout_names_every_package_and_module() -> None:
    """The layout map is complete: each package and top-level module under service/ has its
    line (``  name/`` or ``  name.py``), so a newcomer finds every part from the README."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    parts = [
        f"{p.name}/" if p.is_dir() else p.name
        for p in sorted((ROOT / "service").iterdir())
        if (p.is_dir() and (p / "__init__.py").exists())
        or (p.suffix == ".py" and p.stem != "__init__")
    ]
    missing = [part for part in parts if not re.search(rf"^  {re.escape(part)}\s", readme, re.M)]
    assert not missing, f"README.md's layout map lacks {missing}"
