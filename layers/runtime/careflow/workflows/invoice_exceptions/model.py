"""Invoice exception: at the invoice's first match, the chance it falls out of match and
its likely cause.

Learns from the workflow's own concluded invoices: ``match`` when it matched first time,
else the cause the rules found (the first, the one its AP queue follows; a duplicate's
``duplicate_invoice``; ``no_receipt`` when the receipt never came). It sees the invoice's
shape (lines, amount, implant lines, contract prices, the PO and the receipt as the ERP has
them, the invoice's age); never the supplier, the invoice, the PO or any amount's line.
The baseline it must beat is the majority (``match``): the rules know nothing before the
match runs.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from typing import Any

from careflow.ml.features import Feature
from careflow.ml.history import audited_inputs
from careflow.ml.registry import Example, HistoryRecord, ModelDef
from careflow.workflows.invoice_exceptions import rules as r

MATCH = "match"
WORKFLOW_ID = "invoice-exceptions"
CLASSES = (MATCH, *r.CAUSES)

FEATURES = (
    Feature("line_count", "number", "the invoice's lines"),
    Feature("amount_log10", "number", "log10 of the invoice total (USD)"),
    Feature("implant_share", "number", "the share of its PO lines that are implants"),
    Feature("contract_priced", "flag", "a contract price exists for one of its items"),
    Feature("has_po", "flag", "the invoice names a purchase order"),
    Feature("po_known", "flag", "the ERP knows the purchase order"),
    Feature("receipt_posted", "flag", "a goods receipt is posted on the PO"),
    Feature("invoice_age_days", "number", "days from the invoice date to its receipt by AP"),
)


def features_of(
    *,
    line_count: int,
    total: float,
    implant_lines: int,
    po_lines: int,
    contract_priced: bool,
    has_po: bool,
    po_known: bool,
    receipt_posted: bool,
    invoice_age_days: int,
) -> dict[str, Any]:
    return {
        "line_count": line_count,
        "amount_log10": round(math.log10(1 + max(0.0, total)), 4),
        "implant_share": round(implant_lines / po_lines, 4) if po_lines else 0.0,
        "contract_priced": contract_priced,
        "has_po": has_po,
        "po_known": po_known,
        "receipt_posted": receipt_posted,
        "invoice_age_days": invoice_age_days,
    }


def label_of(rec: HistoryRecord) -> str | None:
    """What the match found: the raised exception's first cause, a duplicate, no receipt by
    the policy's limit, a first-time match; None while it is still undecided."""
    for a in rec.get("audit", ()):
        if a.get("action") == "invoice_exception_raised":
            causes = a.get("detail", {}).get("causes") or []
            if causes and causes[0] in r.CAUSES:
                return str(causes[0])
    names = [m.get("name") for m in rec.get("milestones", ())]
    if "duplicate_found" in names:
        return r.DUPLICATE_INVOICE
    if "no_receipt" in names:
        return r.NO_RECEIPT
    if "matched" in names:
        return MATCH
    return None


def examples(history: Sequence[HistoryRecord]) -> list[Example]:
    """Each invoice whose match concluded, with its features as audited when it was scored
    (``model.predicted``). Invoices matched before the model ran carry no features (the
    workflow keeps the invoice in the ERP, not its shape) and are left out."""
    out: list[Example] = []
    for rec in history:
        if rec.get("workflow") != WORKFLOW_ID:
            continue
        features = next(iter(audited_inputs(rec, MODEL.id).values()), None)
        label = label_of(rec)
        if features is not None and label is not None:
            out.append((dict(features), label))
    return out


def baseline(features: Mapping[str, Any]) -> dict[str, float]:
    """Before the match the rules know nothing: every invoice matches (the majority)."""
    return {c: 1.0 if c == MATCH else 0.0 for c in CLASSES}


def _cause(rng: random.Random, f: Mapping[str, Any], duplicate: bool) -> str:
    """Assumed effects (docs/models/invoice_exception.md): a duplicate is a duplicate; no PO
    on the invoice or one the ERP lacks is missing_po; no receipt posted mostly ends
    no_receipt; implants (exact quantities) and many lines bring quantity variances;
    contract-priced items contract price variances; large totals price variances."""
    if duplicate:
        return r.DUPLICATE_INVOICE
    if not f["has_po"] or not f["po_known"]:
        return r.MISSING_PO
    if not f["receipt_posted"] and rng.random() < 0.55:
        return r.NO_RECEIPT
    risks = {
        r.QUANTITY_VARIANCE: -2.6 + 2.2 * f["implant_share"] + 0.12 * f["line_count"],
        r.CONTRACT_PRICE_VARIANCE: -1.6 if f["contract_priced"] else -9.0,
        r.PRICE_VARIANCE: -3.6 + 0.45 * f["amount_log10"],
    }
    for cause, logit in risks.items():
        if rng.random() < 1 / (1 + math.exp(-logit)):
            return cause
    return MATCH


def generate(rng: random.Random, count: int) -> list[HistoryRecord]:
    """Invoices as the workflow records them (the ``model.predicted`` features, then the
    match's milestone or ``invoice_exception_raised`` entry): 1-12 lines, totals log-uniform
    $80-$150k, 30 % of suppliers implant vendors, 35 % with contract prices, 4 % without a
    PO and 2 % with one the ERP lacks, 80 % with the receipt posted at receipt, 1.5 %
    duplicates, invoice 0-20 days old; causes drawn by :func:`_cause`."""
    out: list[HistoryRecord] = []
    for n in range(count):
        lines = rng.randint(1, 12)
        implants = sum(rng.random() < 0.6 for _ in range(lines)) if rng.random() < 0.3 else 0
        has_po = rng.random() >= 0.04
        f = features_of(
            line_count=lines,
            total=math.exp(rng.uniform(math.log(80), math.log(150000))),
            implant_lines=implants,
            po_lines=lines,
            contract_priced=rng.random() < 0.35,
            has_po=has_po,
            po_known=has_po and rng.random() >= 0.02,
            receipt_posted=rng.random() < 0.8,
            invoice_age_days=rng.randint(0, 20),
        )
        cause = _cause(rng, f, rng.random() < 0.015)
        iid = f"gen-ie-{n:05d}"
        audit: list[dict[str, Any]] = [
            {
                "action": "model.predicted",
                "detail": {"model_id": "invoice_exception", "features": f},
            }
        ]
        milestones: list[dict[str, Any]] = []
        if cause == MATCH:
            milestones.append({"name": "matched"})
        elif cause == r.DUPLICATE_INVOICE:
            milestones.append({"name": "duplicate_found"})
        elif cause == r.NO_RECEIPT:
            milestones.append({"name": "no_receipt"})
        else:
            milestones.append({"name": "exception_raised", "status": "PENDING"})
            audit.append({"action": "invoice_exception_raised", "detail": {"causes": [cause]}})
        facility = "fac-north" if rng.random() < 0.6 else "fac-south"
        out.append(
            {
                "workflow": WORKFLOW_ID,
                "facility_id": facility,
                "instance": {
                    "instance_id": iid,
                    "workflow_id": WORKFLOW_ID,
                    "facility_id": facility,
                },
                "milestones": [{"instance_id": iid, **m} for m in milestones],
                "tasks": [],
                "audit": [{"instance_id": iid, **a} for a in audit],
            }
        )
    return out


MODEL = ModelDef(
    id="invoice_exception",
    title="Invoice exception risk and its likely cause, at the first match",
    workflow=WORKFLOW_ID,
    owner="Accounts payable (the invoice exceptions workflow's owner)",
    features=FEATURES,
    classes=CLASSES,
    examples=examples,
    baseline=baseline,
    baseline_name="the rules before the match (every invoice matches: the majority)",
    metric="macro_f1",
    margin=0.1,
    generate=generate,
    history_size=4000,
    ok_class=MATCH,
)
