"""Every handler publishes the metrics it added at the end of its invocation (Powertools'
EMF line on stdout), success or failure; disabled (local cloud, tests) they are dropped."""

from __future__ import annotations

import json

import pytest

from careflow.observability import metrics, step


@step("example")
def _counts(event, context):  # type: ignore[no-untyped-def]
    metrics.add_metric(name="ExampleCounted", unit="Count", value=2)
    if event.get("fail"):
        raise RuntimeError("boom")
    return {"ok": True}


def _emf_lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.startswith('{"_aws"')]


@pytest.mark.parametrize("fail", [False, True])
def test_a_handlers_metrics_are_published_once_at_its_end(monkeypatch, capsys, fail):
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    monkeypatch.delenv("POWERTOOLS_DEV", raising=False)
    if fail:
        with pytest.raises(RuntimeError):
            _counts({"fail": True}, None)
    else:
        _counts({}, None)
    [emf] = _emf_lines(capsys.readouterr().out)
    assert emf["ExampleCounted"] in (2.0, [2.0])  # one value: EMF may keep it as a list
    [directive] = emf["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "Careflow"
    assert not metrics.metric_set  # nothing carried into the next invocation


def test_disabled_metrics_are_dropped_not_piled_up(monkeypatch, capsys):
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    for _ in range(150):  # past Powertools' 100-value overflow, which would print
        _counts({}, None)
    assert _emf_lines(capsys.readouterr().out) == []
    assert not metrics.metric_set


def test_a_kpi_metric_is_its_own_emf_line_with_its_dimensions(monkeypatch, capsys):
    from careflow.observability import kpi_metric

    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    monkeypatch.delenv("POWERTOOLS_DEV", raising=False)
    kpi_metric("AuthorizationTurnaround", "Seconds", 5400, workflow_id="w", facility_id="fac-n")
    [emf] = _emf_lines(capsys.readouterr().out)
    assert emf["AuthorizationTurnaround"] in (5400.0, [5400.0])
    [directive] = emf["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "Careflow"
    assert directive["Dimensions"] == [["service", "workflow_id", "facility_id"]]
    assert (emf["workflow_id"], emf["facility_id"]) == ("w", "fac-n")
    assert not metrics.metric_set  # the handler's own metric set is not touched


def test_a_kpi_metric_takes_no_other_dimension_and_disabled_prints_nothing(monkeypatch, capsys):
    from careflow.observability import kpi_metric

    with pytest.raises(ValueError, match="patient"):
        kpi_metric("X", "Count", 1, patient="someone")
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    kpi_metric("X", "Count", 1, workflow_id="w")
    assert _emf_lines(capsys.readouterr().out) == []


def test_a_command_hosting_the_cloud_keeps_stdout_for_its_output(capfd, monkeypatch):
    """CI caught `careflow demo --json` printing a retried step's "step failed" warning on
    stdout ahead of the JSON; the CLI moves the step logger to stderr before it starts."""
    import logging
    import sys

    from careflow import cli
    from careflow.observability import logger

    streams = [h.stream for h in logger.handlers if isinstance(h, logging.StreamHandler)]
    assert streams, "the step logger has a stream handler"
    service = logging.getLogger("careflow")
    propagates = service.propagate
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "WARNING")  # what _quiet_logs defaults
    try:
        cli._quiet_logs()
        logger.warning("step failed", extra={"step": "check_eligibility", "error": "Timeout"})
        out, err = capfd.readouterr()
        assert out == ""
        assert '"message":"step failed"' in err and '"step":"check_eligibility"' in err
        assert err.count("step failed") == 1  # once, as JSON with its ids, not also plain
    finally:
        for handler, stream in zip(logger.handlers, streams, strict=False):
            handler.setStream(stream)
        service.propagate = propagates
    assert sys.stdout is not sys.stderr
