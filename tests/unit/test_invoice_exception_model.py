"""The invoice exception model: its examples read invoice records as the workflow writes
them, its generator is seeded, its baseline is the majority."""

from __future__ import annotations

import random

from careflow.workflows.invoice_exceptions import model

FEATURES = model.features_of(
    line_count=3,
    total=1200.0,
    implant_lines=1,
    po_lines=3,
    contract_priced=True,
    has_po=True,
    po_known=True,
    receipt_posted=False,
    invoice_age_days=4,
)


def record(milestones: list[str], audit: list[dict], *, scored: bool = True) -> dict:
    predicted = {"action": "model.predicted", "detail": {"model_id": "invoice_exception"}}
    predicted["detail"]["features"] = FEATURES
    return {
        "workflow": "invoice-exceptions",
        "facility_id": "fac-north",
        "instance": {"instance_id": "ie-1"},
        "milestones": [{"name": m} for m in milestones],
        "tasks": [],
        "audit": ([predicted] if scored else []) + audit,
    }


def raised(*causes: str) -> dict:
    return {"action": "invoice_exception_raised", "detail": {"causes": list(causes)}}


def test_examples_label_by_what_the_match_found():
    found = model.examples(
        [
            record(["exception_raised"], [raised("quantity_variance", "price_variance")]),
            record(["duplicate_found"], []),
            record(["awaiting_receipt", "no_receipt"], []),
            record(["awaiting_receipt", "matched"], []),
            record(["awaiting_receipt"], []),  # still waiting: no answer yet
            record(["matched"], [], scored=False),  # never scored: no features kept
        ]
    )
    assert [label for _, label in found] == [
        "quantity_variance",
        "duplicate_invoice",
        "no_receipt",
        "match",
    ]
    assert found[0][0] == FEATURES
    assert FEATURES["amount_log10"] == 3.0795 and FEATURES["implant_share"] == 0.3333


def test_the_generator_is_seeded_and_writes_what_examples_read():
    one = model.generate(random.Random("s"), 400)
    assert one == model.generate(random.Random("s"), 400)
    assert one != model.generate(random.Random("t"), 400)
    found = model.examples(one)
    assert len(found) == 400
    assert {label for _, label in found} <= set(model.CLASSES)
    assert len({label for _, label in found}) >= 5


def test_the_baseline_is_the_majority_match():
    scores = model.baseline(FEATURES)
    assert max(scores, key=lambda c: scores[c]) == "match" and set(scores) == set(model.CLASSES)
