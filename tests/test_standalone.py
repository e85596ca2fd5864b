"""The product stands alone: nothing outside tests/ points at files a user's clone does not have.

The seed document, the TRON facts and Prometheus's test scripts live outside the repository
(``../shared/``) while the project is developed; what a user needs from them is said in
``docs/``. Only tests may read ``../shared/``.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = (b"../shared", b"/shared/")
MARKDOWN = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

_FENCE = re.compile(r"^```.*?^```", re.M | re.S)
_CODE_SPAN = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)


def _project_files() -> list[Path]:
    """Files git tracks or would track (untracked but not ignored), outside tests/."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    names = sorted({n for n in out.decode("utf-8").split("\0") if n})
    return [ROOT / n for n in names if not n.startswith("tests/") and (ROOT / n).is_file()]


def _links(text: str) -> list[str]:
    """Link targets of a markdown text, ignoring code blocks and code spans."""
    prose = _CODE_SPAN.sub("", _FENCE.sub("", text))
    return _LINK.findall(prose)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    plain = _CODE_SPAN.sub(lambda m: m.group(0).strip("`"), heading).lower()
    return re.sub(r"[^\w\- ]", "", plain).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = _FENCE.sub("", path.read_text(encoding="utf-8"))
    return {_slug(h) for h in _HEADING.findall(text)}


def test_no_file_outside_tests_points_into_shared() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}: {needle.decode()}"
        for path in _project_files()
        for needle in FORBIDDEN
        if needle in path.read_bytes()
    ]
    assert offenders == []


def test_docs_exist() -> None:
    names = {p.name for p in MARKDOWN}
    assert {"README.md", "reference-service.md", "tron-network.md"} <= names


@pytest.mark.parametrize("doc", MARKDOWN, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve_inside_the_repository(doc: Path) -> None:
    broken = []
    for target in _links(doc.read_text(encoding="utf-8")):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto: ...
            continue
        file_part, _, anchor = target.partition("#")
        dest = (doc.parent / file_part).resolve() if file_part else doc
        if not dest.is_relative_to(ROOT) or not dest.exists():
            broken.append(f"{target}: no such file in the repository")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            broken.append(f"{target}: no heading with anchor #{anchor}")
    assert broken == []


def test_link_checker_sees_links_and_skips_code() -> None:
    text = "See [a](docs/a.md#x) and ![img](b.png).\n`[c](not/a/link)`\n```\n[d](nor/this)\n```\n"
    assert _links(text) == ["docs/a.md#x", "b.png"]
    assert _slug("Broadcast errors and what the client does") == "broadcast-errors-and-what-the-client-does"
    assert _slug("The model, and `choices` (seed)") == "the-model-and-choices-seed"


def test_metric_catalog_in_docs_matches_the_exporter() -> None:
    """docs/reference-service.md's catalog table names every exported family, type, labels, buckets."""
    from simulator.metrics import make_metrics

    text = (ROOT / "docs" / "reference-service.md").read_text(encoding="utf-8")
    row = re.compile(r"^\| `(\w+)` \| (counter|gauge|histogram) \| ([^|]*)\| ([^|]*)\|$", re.M)
    documented = {
        name: (
            kind,
            tuple(re.findall(r"`(\w+)`", labels)),
            tuple(float(b) for b in re.findall(r"[\d.]+", buckets)),
        )
        for name, kind, labels, buckets in row.findall(text)
    }
    exported = {}
    for family in make_metrics().families():
        suffix = "_total" if family._type == "counter" else ""
        bounds = tuple(getattr(family, "_upper_bounds", ())[:-1])
        exported[family._name + suffix] = (family._type, tuple(family._labelnames), bounds)
    assert documented == exported
