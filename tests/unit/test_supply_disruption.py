"""The supply_disruption model: its generator, examples, baseline and artifact, and the
coordinator's task that lists its ranked actions (evaluate_readiness with fakes)."""

from __future__ import annotations

import json
import random
from datetime import timedelta

from careflow.canonical.cases import SupplyNeed
from careflow.canonical.supply import StockPosition
from careflow.domain.tasks import task_id_for
from careflow.ml import registry
from careflow.ml.features import checked
from careflow.ml.port import ModelUnavailable, Prediction
from careflow.workflows.surgical_case_readiness import supply_disruption as sd
from tests.fakes import FakeEhr, FakeErp
from tests.unit.test_surgical_readiness_steps import NOW, World, a_case, case_event

ITEM = "IMP-THA-STEM-12"


def pos(facility: str, item: str, on_hand: int, *, consignment: bool = False) -> StockPosition:
    return StockPosition(
        facility_id=facility,
        item_id=item,
        on_hand=on_hand,
        reserved=0,
        par_level=2,
        supplier_id="sup-1",
        lead_time_days=9,
        consignment=consignment,
    )


def test_the_generator_is_deterministic_and_writes_what_the_examples_read():
    first = sd.generate(random.Random(7), 200)
    assert first == sd.generate(random.Random(7), 200)
    assert first != sd.generate(random.Random(8), 200)
    examples = sd.examples(first)
    assert len(examples) == 200
    assert {label for _, label in examples} == set(sd.ACTIONS)
    for features, _ in examples:  # declared, non-identifying features only
        assert checked(sd.FEATURES, features) == features


def test_examples_keep_only_decided_shortage_actions_with_their_audited_features():
    (rec,) = sd.generate(random.Random(1), 1)
    proceed = json.loads(json.dumps(rec))
    proceed["tasks"][0]["decision"] = "PROCEED"
    unscored = json.loads(json.dumps(rec))
    unscored["audit"] = []
    other = {**json.loads(json.dumps(rec)), "workflow": "supply-replenishment"}
    assert sd.examples([proceed, unscored, other]) == []
    ((features, label),) = sd.examples([rec])
    assert label == rec["tasks"][0]["decision"]
    assert features == rec["audit"][0]["detail"]["features"]


def test_the_baseline_is_todays_rule():
    fits = sd.features_of(
        days_to_case=10,
        quantity_short=1,
        other_available=[5],
        substitute_in_stock=True,
        vendor_lead_days=4,
        vendor_consignment=False,
        implant=True,
        in_item_master=True,
    )
    late = {**fits, "vendor_lead_days": 12.0, "lead_fits": False}
    top = lambda scores: max(scores, key=scores.get)  # noqa: E731
    assert (top(sd.baseline(fits)), top(sd.baseline(late))) == (sd.EXPEDITE, sd.RESCHEDULE)


def test_features_add_up_the_other_facilities_and_never_name_the_case():
    f = sd.features_of(
        days_to_case=2.5,
        quantity_short=3,
        other_available=[1, 3, -2],
        substitute_in_stock=False,
        vendor_lead_days=5,
        vendor_consignment=True,
        implant=True,
        in_item_master=True,
    )
    assert f["other_facilities_available"] == 4
    assert f["transfer_covers"] is True  # one facility alone has the 3
    assert f["lead_fits"] is False  # 5 days of lead, the case in 2.5
    assert set(f) == {x.name for x in sd.FEATURES}


def test_the_trained_artifact_beats_todays_rule_by_its_margin():
    assert "supply_disruption" in registry.definitions()
    art = registry.artifact("supply_disruption")
    assert art is not None and art["metric"] == "mrr"
    assert art["metrics"]["mrr"] >= art["baseline"]["mrr"] + sd.MODEL.margin
    assert art["classes"] == list(sd.ACTIONS)


# -- the coordinator's task ----------------------------------------------------------------
def _shortage_evaluation(case, *, supplier: str = "sup-1") -> dict:
    shortage = {
        "item_id": ITEM,
        "needed": 2,
        "available": 0,
        "supplier_id": supplier,
        "lead_time_days": 9,
    }
    deps = [
        {"dependency": d, "status": "OK", "reasons": []}
        for d in ("authorization", "benefits", "clinician_and_room", "sterile_processing")
    ]
    deps.append(
        {
            "dependency": "supplies",
            "status": "THREATENED",
            "reasons": [f"item {ITEM}: 0 available, 2 needed"],
            "details": {"shortages": [shortage], "requisitions": ["REQ-1"]},
        }
    )
    return {**case_event(case), "dependencies": deps}


def _short_case():
    return a_case(
        scheduled_start=NOW + timedelta(days=4),
        supplies=(SupplyNeed(item_id=ITEM, quantity=2, implant=True, substitutes=("IMP-ALT",)),),
    )


class FixedPredictor:
    """A predictor that answers one ranking (and records what it was asked)."""

    def __init__(self, scores: dict[str, float] | None = None) -> None:
        self.scores = scores
        self.asked: list[dict] = []

    def predict(self, model_id, features, *, backend="local"):
        self.asked.append(dict(features))
        if self.scores is None:
            raise ModelUnavailable("not installed")
        label = max(self.scores, key=self.scores.__getitem__)
        return Prediction(
            model_id=model_id,
            version="1.test",
            label=label,
            confidence=self.scores[label],
            scores=self.scores,
            reasons=("transfer_covers",),
            input_hash="h" * 16,
        )


def test_a_shortage_task_lists_the_ranked_actions_and_suggests_the_top_one():
    case = _short_case()
    erp = FakeErp([pos("fac-south", ITEM, 3, consignment=True), pos("fac-north", "IMP-ALT", 0)])
    predictor = FixedPredictor(
        {"TRANSFER": 0.55, "EXPEDITE": 0.25, "SUBSTITUTE": 0.05, "RESCHEDULE": 0.15}
    )
    world = World(ehr=FakeEhr([case]), erp=erp, predictor=predictor)
    out = world.run("evaluate_readiness", _shortage_evaluation(case))
    task = out["task"]
    assert task["allowed_decisions"] == [
        "PROCEED",
        "SUBSTITUTE",
        "TRANSFER",
        "EXPEDITE",
        "RESCHEDULE",
        "CANCEL",
    ]
    (asked,) = predictor.asked  # what the ERP and the card told, no case or patient
    assert asked["other_facilities_available"] == 3 and asked["transfer_covers"] is True
    assert asked["substitute_in_stock"] is False  # the substitute's shelf is empty
    assert asked["vendor_consignment"] is True and asked["implant"] is True
    assert asked["lead_fits"] is False and asked["quantity_short"] == 2
    s = task["suggestion"]
    assert (s["decision"], s["model_id"], s["version"]) == (
        "TRANSFER",
        "supply_disruption",
        "1.test",
    )
    assert [a for a, _ in s["ranked"]] == ["TRANSFER", "EXPEDITE", "RESCHEDULE", "SUBSTITUTE"]
    ranked_line = next(x for x in task["reasons"] if "suggested actions" in x)
    assert ranked_line.index("TRANSFER 55%") < ranked_line.index("EXPEDITE 25%")
    assert any(x.startswith("why TRANSFER: transfer_covers") for x in task["reasons"])
    (predicted,) = [a for a in world.store.audit_trail("i-1") if a.action == "model.predicted"]
    assert predicted.detail["about"] == task_id_for("i-1", "coordinator")
    assert "appt-1" not in json.dumps(predicted.detail)


def test_without_the_model_the_task_still_offers_the_actions_and_the_rules_open_it():
    case = _short_case()
    world = World(ehr=FakeEhr([case]), erp=FakeErp(), predictor=FixedPredictor(None))
    task = world.run("evaluate_readiness", _shortage_evaluation(case))["task"]
    assert task["suggestion"] is None
    assert "EXPEDITE" in task["allowed_decisions"]
    assert not any("suggested actions" in x for x in task["reasons"])
    assert [a.action for a in world.store.audit_trail("i-1")] == ["model.skipped"]


def test_the_real_model_ranks_every_action():
    case = _short_case()
    erp = FakeErp([pos("fac-north", "IMP-ALT", 5)])  # a substitute on the shelf
    world = World(ehr=FakeEhr([case]), erp=erp)
    task = world.run("evaluate_readiness", _shortage_evaluation(case))["task"]
    s = task["suggestion"]
    assert sorted(a for a, _ in s["ranked"]) == sorted(sd.ACTIONS)
    assert abs(sum(p for _, p in s["ranked"]) - 1) < 0.01
    assert s["decision"] == s["label"] == s["ranked"][0][0]


def test_a_shortage_decision_rechecks_the_case_and_says_what_was_chosen():
    case = a_case()
    erp = FakeErp([pos("fac-north", n.item_id, n.quantity) for n in case.supplies])
    world = World(ehr=FakeEhr([case]), erp=erp)
    deps = _shortage_evaluation(case)["dependencies"]
    out = world.run(
        "apply_coordinator_decision",
        {**case_event(case), "dependencies": deps, "coordinator": {"decision": "TRANSFER"}},
    )
    assert out["outcome"] == "READY"  # the transferred stock is on the shelf now
    assert out["reasons"][-1] == "coordinator resolves the shortage: TRANSFER"
