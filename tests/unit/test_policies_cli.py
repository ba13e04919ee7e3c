"""``careflow policy``: every outcome is output or one line per problem, never a traceback."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from careflow.localcloud.cloud import free_port
from careflow.policies import resolve
from careflow.policies.store import FilePolicyStore

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "policies"
# The runtime's settings must not leak in from a local cloud running in this test process.
ENV = {
    k: v
    for k, v in os.environ.items()
    if k not in ("TABLE_NAME", "AWS_ENDPOINT_URL", "CAREFLOW_POLICIES_DIR")
}


def careflow(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "careflow.cli", "policy", *args],
        check=False,
        cwd=cwd,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    return proc


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the packaged policies to break."""
    shutil.copytree(POLICIES, tmp_path / "policies")
    return tmp_path / "policies"


def test_validate_passes_the_packaged_policies():
    proc = careflow("validate")
    assert proc.returncode == 0, proc.stdout
    documents = [p for p in POLICIES.rglob("*.json") if p.parent.name != "schema"]
    assert len(documents) >= 12  # eight workflows', the ai-models policy, overlays
    assert proc.stdout.strip() == f"{len(documents)} policy file(s) valid"


def test_validate_names_file_field_and_rule_once_per_problem(tree: Path):
    path = tree / "enterprise" / "prior-authorization.json"
    data = json.loads(path.read_text("utf-8"))
    data["version"] = "next"
    data["tables"]["pend_clock"]["rows"][0]["when"] = {"prio": "expedited"}
    path.write_text(json.dumps(data), encoding="utf-8")
    proc = careflow("validate", str(path), cwd=tree.parent)
    assert proc.returncode == 2
    assert proc.stdout.splitlines() == [
        "policies/enterprise/prior-authorization.json: version: String should match pattern "
        "'^[0-9]{1,6}(\\.[0-9]{1,6}){0,3}$'"
    ]
    data["version"] = "2026.12.1"
    path.write_text(json.dumps(data), encoding="utf-8")
    proc = careflow("validate", str(path), cwd=tree.parent)
    assert proc.stdout.splitlines() == [
        "policies/enterprise/prior-authorization.json: tables.pend_clock.rows[0].when.prio: "
        "not an input of the table (priority)"
    ]
    assert "1 problem(s) in 1 of 1 file(s)" in proc.stderr


@pytest.mark.parametrize(
    ("content", "rule"),
    [
        (b'{"kind": "enterprise", "name": "x\xe9"}', "not UTF-8: byte 0xe9 at offset 33"),
        (b"\xef\xbb\xbf{", "not JSON"),  # a BOM is read (UTF-8 or UTF-16), the rest is not JSON
        (b"\xff\xfe{\x00\x00\xd8", "not UTF-16 despite its byte order mark"),
        (b'{"kind": "enterprise",', "not JSON: Expecting property name enclosed in double quotes"),
        (b"", "not JSON: Expecting value (line 1, column 1)"),
        (b"[]", "the document must be a JSON object"),
        (b"[" * 100000, "not JSON"),
    ],
)
def test_validate_refuses_unreadable_files_in_one_line(tmp_path: Path, content: bytes, rule: str):
    path = tmp_path / "p.json"
    path.write_bytes(content)
    proc = careflow("validate", str(path))
    assert proc.returncode == 2
    lines = proc.stdout.splitlines()
    assert len(lines) == 1 and rule in lines[0] and lines[0].startswith(str(path)), lines


def test_validate_checks_where_a_file_sits_and_that_overlays_fit(tree: Path):
    overlay = tree / "facilities" / "fac-south" / "surgical-readiness.json"
    moved = tree / "facilities" / "fac-east" / "surgical-readiness.json"
    moved.parent.mkdir()
    shutil.move(overlay, moved)
    other = tree / "facilities" / "fac-south" / "prior-authorization.json"
    data = json.loads(other.read_text("utf-8"))
    data["tables"]["queue_routing"]["remove_rows"] = ["radiology"]
    other.write_text(json.dumps(data), encoding="utf-8")
    proc = careflow("validate", str(tree), str(tree / "missing.json"), cwd=tree.parent)
    assert proc.returncode == 2
    assert sorted(proc.stdout.splitlines()) == [
        "policies/facilities/fac-east/surgical-readiness.json: facility_id: "
        "must be 'fac-east', the folder's name",
        "policies/facilities/fac-south/prior-authorization.json: tables.queue_routing.remove_rows: "
        "the enterprise table has no row 'radiology'",
        "policies/missing.json: no such file",
    ]


def test_show_prints_effective_values_with_the_version_and_marks_the_overlay():
    proc = careflow("show", "surgical-readiness", "--facility", "fac-south")
    assert proc.returncode == 0
    lines = proc.stdout.splitlines()
    assert lines[0] == "surgical-readiness@2026.12.1+fac-south@3  (facility fac-south)"
    assert "  coordinator_task_seconds  7200 (2 h)  [fac-south]" in lines
    assert any(line.startswith("  hard_stop_seconds") and "(72 h)" in line for line in lines)


def test_show_json_is_the_snapshot_resolve_returns():
    proc = careflow("show", "prior-authorization", "--facility", "fac-south", "--json")
    shown = json.loads(proc.stdout)
    expected = resolve("prior-authorization", "fac-south", store=FilePolicyStore())
    assert shown == expected.model_dump(mode="json")


def test_show_a_pinned_version_and_refuse_an_unknown_one_in_a_line():
    proc = careflow("show", "surgical-readiness", "--version", "2026.12.1")
    assert proc.stdout.startswith("surgical-readiness@2026.12.1  (enterprise)")
    gone = careflow("show", "surgical-readiness", "--version", "2020.1")
    assert gone.returncode == 2
    assert gone.stderr.splitlines() == [
        "error: surgical-readiness enterprise version 2020.1 is not in the store"
    ]
    unknown = careflow("show", "discharge")
    assert unknown.returncode == 2 and len(unknown.stderr.splitlines()) == 1


def test_diff_of_a_facility_against_the_enterprise_policy():
    proc = careflow("diff", "prior-authorization", "--facility", "fac-south")
    assert proc.returncode == 0
    assert proc.stdout.splitlines() == [
        "--- prior-authorization@2026.11.2",
        "+++ prior-authorization@2026.11.2+fac-south@2",
        "table queue_roles row south_desks: added (first): queue in "
        "[utilization_review_cardiology, south_infusion_center_auth] -> "
        "work = utilization_review_nurse; supervise = utilization_review_lead, department_director",
        "table queue_routing row cardiology: added (first): service_line = cardiology -> "
        "queue = utilization_review_cardiology",
        "table queue_routing row infusion: then queue = utilization_review_infusion -> "
        "queue = south_infusion_center_auth",
    ]
    same = careflow("diff", "surgical-readiness", "--from", "2026.12.1", "--to", "2026.12.1")
    assert same.stdout.splitlines()[-1] == "no differences"
    nothing = careflow("diff", "surgical-readiness")
    assert nothing.returncode == 2
    assert nothing.stderr.startswith("error: nothing to compare")


def test_publish_without_a_cloud_says_so_in_one_line():
    port = free_port()
    proc = careflow(
        "publish",
        "surgical-readiness",
        "--facility",
        "fac-south",
        "--port",
        str(port),
        "--file",
        str(POLICIES / "facilities" / "fac-south" / "surgical-readiness.json"),
    )
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        f"error: no local cloud answers on http://127.0.0.1:{port}: start one with "
        "`careflow up` (or pass --port, or set CAREFLOW_ENDPOINT)"
    ]


def test_publish_refuses_a_file_that_is_not_what_the_command_names(tmp_path: Path):
    file = str(POLICIES / "facilities" / "fac-south" / "surgical-readiness.json")
    wrong = careflow("publish", "surgical-readiness", "--file", file)
    assert wrong.returncode == 2
    assert wrong.stderr.splitlines() == [
        "error: policies/facilities/fac-south/surgical-readiness.json holds the fac-south "
        "overlay, and the command says no --facility"
    ]
    bad = tmp_path / "x.json"
    bad.write_bytes(b"\xff")
    unreadable = careflow("publish", "surgical-readiness", "--file", str(bad))
    assert unreadable.returncode == 2 and "not UTF-8" in unreadable.stderr
    aws = careflow(
        "publish", "surgical-readiness", "--facility", "fac-south", "--aws", "--file", file
    )
    assert aws.stderr.splitlines() == [
        "error: --aws needs --table: the deployed state table's name"
    ]
