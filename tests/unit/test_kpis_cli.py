"""``careflow kpis``: a workflows.read token of the CLI's client for the facilities asked,
then GET /v1/kpis; its answer as a table or as JSON (the API and cloud faked here; the
e2e tests reach the real ones)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from careflow import cli
from careflow.localcloud import api_client

REPORT = {
    "window": {"since": "2026-11-22T08:00:00+00:00", "until": "2026-11-29T08:00:00+00:00"},
    "facilities": ["fac-north"],
    "definitions": {},
    "workflows": [
        {
            "workflow_id": "prior-authorization",
            "started": 4,
            "completed": 3,
            "failed": 0,
            "cancelled": 0,
            "running": 1,
            "escalation_rate": 0.25,
            "sla_adherence": None,
            "open_tasks": [
                {"queue": "utilization_review_nurse", "count": 1, "oldest_age_minutes": 2850}
            ],
            "authorization_turnaround": {
                "decisions": 4,
                "p50_minutes": 90.0,
                "p90_minutes": 2880.0,
            },
        }
    ],
}


@pytest.fixture
def faked(monkeypatch):
    seen: dict[str, Any] = {}
    monkeypatch.setattr(cli, "require_ready", lambda endpoint: None)

    def control(endpoint, what, method, path, body=None):
        seen["token request"] = body
        return {"token": "t0k"}

    def call(base, method, path, token, params=None, body=None):
        seen["call"] = (method, path, token, params)
        return REPORT

    monkeypatch.setattr(cli, "_control", control)
    monkeypatch.setattr(api_client, "api_url", lambda endpoint, port: "http://h:1/v1")
    monkeypatch.setattr(api_client, "call", call)
    return seen


def test_kpis_asks_for_a_read_token_for_the_facility_and_prints_the_answer(faked, capsys):
    assert cli.main(["kpis", "--facility", "fac-north", "--window", "P1D", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == REPORT
    assert faked["token request"]["scopes"] == ["workflows.read"]
    assert faked["token request"]["facilities"] == ["fac-north"]
    assert faked["call"] == ("GET", "/kpis", "t0k", {"window": "P1D"})


def test_kpis_as_a_table(faked, capsys):
    assert cli.main(["kpis"]) == 0
    out = capsys.readouterr().out
    assert "started 4  completed 3  failed 0  cancelled 0  running 1" in out
    assert "escalation rate 25%  SLA adherence -" in out
    assert "open in utilization_review_nurse: 1, oldest 2850 min" in out
    assert "authorization turnaround: 4 decisions, p50 90 min, p90 2880 min" in out
    assert len(faked["token request"]["facilities"]) > 1  # every facility careflow serves


def test_a_refused_window_is_one_line(faked, monkeypatch, capsys):
    def refuse(*args, **kwargs):
        raise api_client.ApiAnswered(400, "window is not like P7D or PT12H.")

    monkeypatch.setattr(api_client, "call", refuse)
    assert cli.main(["kpis", "--window", "seven"]) == 1
    assert capsys.readouterr().err.strip() == (
        "error: careflow kpis: 400 window is not like P7D or PT12H."
    )


def test_a_workflows_own_kpis_are_printed_a_line_each_whatever_the_workflow():
    row = {
        "workflow_id": "discharge-coordination",
        **dict.fromkeys(("started", "completed", "failed", "cancelled", "running"), 0),
        "escalation_rate": None,
        "sla_adherence": None,
        "open_tasks": [],
        "order_to_departure": {"discharges": 3, "p50_minutes": 240.0, "p90_minutes": 600.0},
        "discharged_before_noon": {"discharges": 4, "before_noon": 3, "share": 0.75},
        "delay_minutes_by_cause": {"awaiting transport": 45, "pharmacy": 0, "DME": 20},
        "gaps_unfilled_at_shift_start": 1,
        "overtime_hours": 36.5,
    }
    out = cli.kpi_table({**REPORT, "workflows": [row]})
    assert "  order to departure: 3 discharges, p50 240 min, p90 600 min" in out
    assert "  discharged before noon: 4 discharges, 3 before noon, 75%" in out
    assert "  delay minutes by cause: awaiting transport 45, DME 20" in out
    assert "  gaps unfilled at shift start: 1\n  overtime hours: 36.5" in out
