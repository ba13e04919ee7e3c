"""Decision tables: conditions, first hit, default, and decisions that say which row decided."""

from __future__ import annotations

import pytest

from careflow.policies import (
    BadDecisionInput,
    DecisionTable,
    NoMatchingRow,
    PolicySnapshot,
    resolve,
)
from careflow.policies.store import FilePolicyStore

FILES = FilePolicyStore()


def table(**kw) -> DecisionTable:
    return DecisionTable.model_validate(
        {
            "inputs": {"service_line": "string", "days": "number", "expedited": "boolean"},
            "outputs": {"queue": "string"},
            **kw,
        }
    )


ROUTING = table(
    rows=[
        {"id": "soon", "when": {"days": {"lt": 3}}, "then": {"queue": "urgent"}},
        {
            "id": "week",
            "when": {"days": {"gte": 3, "lt": 7}, "service_line": "imaging"},
            "then": {"queue": "imaging-week"},
        },
        {"id": "imaging", "when": {"service_line": "imaging"}, "then": {"queue": "imaging"}},
        {
            "id": "surgical",
            "when": {"service_line": {"in": ["surgery", "orthopedics"]}},
            "then": {"queue": "surgery"},
        },
        {
            "id": "flagged",
            "when": {"expedited": True, "service_line": "*"},
            "then": {"queue": "expedite"},
        },
    ],
    default={"queue": "general"},
)


def decide(service_line="imaging", days=10, expedited=False):
    return ROUTING.decide({"service_line": service_line, "days": days, "expedited": expedited})


def test_ranges_include_their_lower_bound_and_exclude_the_upper_one():
    assert decide(days=2.99)[0] == "soon"
    assert decide(days=3)[0] == "week"
    assert decide(days=6)[0] == "week"
    assert decide(days=7)[0] == "imaging"


def test_the_first_matching_row_decides_even_when_later_rows_match_too():
    # "soon" and "imaging" both match: the earlier row wins
    assert decide(service_line="imaging", days=1) == ("soon", {"queue": "urgent"})


def test_in_lists_wildcards_and_booleans():
    assert decide(service_line="orthopedics")[0] == "surgical"
    assert decide(service_line="dental", expedited=True)[0] == "flagged"
    assert decide(service_line="dental", expedited=False) == ("default", {"queue": "general"})


def test_a_boolean_is_not_a_number_and_inputs_must_be_exactly_the_declared_ones():
    with pytest.raises(BadDecisionInput, match="input days must be a number"):
        ROUTING.decide({"service_line": "x", "days": True, "expedited": False})
    with pytest.raises(BadDecisionInput, match="missing input days"):
        ROUTING.decide({"service_line": "x", "expedited": False})
    with pytest.raises(BadDecisionInput, match="unknown input dayz"):
        ROUTING.decide({"service_line": "x", "days": 1, "dayz": 1, "expedited": False})


def test_without_a_default_no_match_is_an_error_naming_the_inputs():
    t = table(rows=[{"id": "a", "when": {"days": {"gt": 100}}, "then": {"queue": "q"}}])
    with pytest.raises(NoMatchingRow, match="no row matches"):
        t.decide({"service_line": "x", "days": 1, "expedited": False})


def test_decisions_carry_row_id_inputs_and_policy_version_for_the_audit():
    snapshot = resolve("prior-authorization", "fac-north", store=FILES)
    decision = snapshot.table("pend_clock").decide({"priority": "expedited"})
    assert decision.row_id == "expedited"
    assert decision.policy_version == "prior-authorization@2026.11.2"
    assert decision.outputs == {
        "decision_clock_seconds": 72 * 3600,
        "escalate_after_seconds": 48 * 3600,
        "inquire_after_seconds": 24 * 3600,
    }
    assert decision.audit() == {
        "policy_version": "prior-authorization@2026.11.2",
        "table": "pend_clock",
        "row_id": "expedited",
        "inputs": {"priority": "expedited"},
        "outputs": decision.outputs,
    }


def test_outputs_are_copies_a_caller_cannot_change_the_table_through():
    snapshot = resolve("surgical-readiness", None, store=FILES)
    chain = snapshot.table("escalation_chain").decide({"dependency": "supplies"})
    chain.outputs["chain"].append("cfo")
    again = snapshot.table("escalation_chain").decide({"dependency": "supplies"})
    assert again.outputs["chain"] == ["supply_chain_buyer", "department_director"]


def test_the_readiness_policy_holds_the_domain_figures():
    s: PolicySnapshot = resolve("surgical-readiness", None, store=FILES)
    assert s.value("coordinator_task_seconds") == 4 * 3600
    assert s.value("hard_stop_seconds") == 72 * 3600
    assert s.value("coordinator_decisions") == ["PROCEED", "RESCHEDULE", "CANCEL"]
    assert (s.value("readiness_check_min_days"), s.value("readiness_check_max_days")) == (7, 14)
    chains = {
        dep: s.table("escalation_chain").decide({"dependency": dep}).outputs["chain"]
        for dep in (
            "authorization",
            "benefits",
            "clinician_and_room",
            "supplies",
            "sterile_processing",
            "pre_op_clearance",
        )
    }
    assert chains == {
        "authorization": ["utilization_review_nurse", "department_director"],
        "benefits": ["case_manager", "department_director"],
        "clinician_and_room": ["scheduler", "department_director"],
        "supplies": ["supply_chain_buyer", "department_director"],
        "sterile_processing": ["sterile_processing_lead", "department_director"],
        "pre_op_clearance": ["department_director"],  # the default
    }


def test_the_prior_authorization_policy_holds_the_cms_clocks_and_routing():
    s = resolve("prior-authorization", None, store=FILES)
    standard = s.table("pend_clock").decide({"priority": "routine"})
    assert standard.row_id == "standard"
    assert standard.outputs["decision_clock_seconds"] == 604800
    assert standard.outputs["escalate_after_seconds"] == 5 * 86400
    assert standard.outputs["inquire_after_seconds"] == 3 * 86400
    more_info = s.table("additional_documentation_task").decide({"priority": "standard"})
    assert more_info.outputs["chain"] == ["utilization_review_nurse", "department_director"]
    assert s.value("appeal_chain") == ["utilization_review_nurse", "department_director"]
    route = s.table("queue_routing")
    queues = {
        (line, days): route.decide({"service_line": line, "days_until_service": days}).outputs[
            "queue"
        ]
        for line, days in (
            ("imaging", 10),
            ("infusion", 10),
            ("surgery", 10),
            ("imaging", 2),
            ("dental", 10),
        )
    }
    assert queues == {
        ("imaging", 10): "utilization_review_imaging",
        ("infusion", 10): "utilization_review_infusion",
        ("surgery", 10): "utilization_review_surgery",
        ("imaging", 2): "utilization_review_urgent",
        ("dental", 10): "utilization_review_nurse",
    }


def test_a_queue_roles_table_must_have_the_shape_the_task_rules_read():
    from careflow.policies import InvalidPolicy, parse_document

    document = {
        "kind": "enterprise",
        "name": "surgical-readiness",
        "version": "9",
        "tables": {
            "queue_roles": {
                "inputs": {"queue": "string"},
                "outputs": {"roles": "string_list"},
                "rows": [{"id": "a", "when": {"queue": "q"}, "then": {"roles": ["r"]}}],
            }
        },
    }
    with pytest.raises(InvalidPolicy) as err:
        parse_document(document, "t.json")
    assert [(p.field, p.rule) for p in err.value.problems] == [
        (
            "tables.queue_roles.outputs",
            "table queue_roles gives exactly {'work': 'string_list', 'supervise': 'string_list'}",
        )
    ]
