"""Contracts are documents: a stale event catalog fails the build."""

import re
from pathlib import Path

from careflow.catalog import CATALOG
from careflow.kit.registry import event_schemas

ROOT = Path(__file__).resolve().parents[2]
PUBLISHED_BY_CODE = re.compile(r'"([A-Z][A-Za-z]+\.[A-Z][A-Za-z]+)"')


def documented() -> set[str]:
    text = (ROOT / "docs" / "events.md").read_text()
    return set(re.findall(r"^\| `([A-Z][A-Za-z]+\.[A-Z][A-Za-z]+)` \|", text, flags=re.M))


def test_every_consumed_and_catalog_published_event_is_documented():
    wanted = set(event_schemas()) | {t for wf in CATALOG for t in wf.publishes}
    wanted |= {t.detail_type for wf in CATALOG for t in wf.triggers}
    wanted |= {s.detail_type for wf in CATALOG for s in wf.subscriptions}
    assert wanted - documented() == set()


def test_every_event_the_domain_publishes_is_documented():
    published = set()
    for path in (ROOT / "layers/runtime/careflow/domain").glob("*.py"):
        for line in path.read_text().splitlines():
            if "publish(" in line or "SOURCE," in line:
                published |= set(PUBLISHED_BY_CODE.findall(line))
    text = (ROOT / "layers/runtime/careflow/domain/tasks.py").read_text()
    published |= set(re.findall(r'SOURCE,\s*"([A-Z][A-Za-z]+\.[A-Z][A-Za-z]+)"', text))
    assert published, "found no publish calls: the scan is broken"
    assert published - documented() == set()


def test_the_readme_starts_with_the_two_commands():
    head = (ROOT / "README.md").read_text().split("\n## ")[0]
    assert "make demo" in head
    assert "make test" in head
