"""A completed case's billing record as FHIR R4 resources, for the EHR sandbox server.

Built from the same :class:`~careflow.canonical.revenue.CaseBilling` the in-process
sandbox holds (``careflow.adapters.sandbox_revenue``), so both serve the same case; the
resources are shaped as :mod:`careflow.adapters.fhir.revenue` documents. Put again after a
change (a charge posted, a note signed): the ids are stable, so the new version replaces
the old. The patient gets synthetic demographics that must never reach a log.
"""

from __future__ import annotations

from typing import Any

from careflow.adapters.fhir.revenue import (
    ACCOUNT_HOLD,
    DOCUMENT_TYPE,
    ERP_ITEM,
    IMPLANT_LOG,
    ITEM_CLASS,
    LOINC,
    OP_NOTE,
)
from careflow.canonical.revenue import CaseBilling
from careflow.localcloud.sandboxes.ehr_seed import VISIT, patient_demographics


def _money(value: Any) -> dict[str, Any]:
    return {"value": float(value), "currency": "USD"}


def revenue_resources(case: CaseBilling) -> list[dict[str, Any]]:
    number = case.case_id.rsplit("-", 1)[-1]
    given, family, birth = patient_demographics(number)
    patient_id = case.patient_ref.split("/")[-1]
    enc_id = f"enc-{case.case_id}"
    enc_ref = {"reference": f"Encounter/{enc_id}"}
    account_id = f"acct-{case.case_id}"
    out: list[dict[str, Any]] = [
        {
            "resourceType": "Patient",
            "id": patient_id,
            "name": [{"family": family, "given": [given]}],
            "birthDate": birth,
        },
        {
            "resourceType": "Encounter",
            "id": enc_id,
            "status": "finished",
            "class": {
                "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                "code": "AMB",
            },
            "identifier": [{"system": VISIT, "value": case.encounter_id}],
            "subject": {"reference": case.patient_ref},
            "appointment": [{"reference": f"Appointment/{case.case_id}"}],
            "serviceProvider": {"reference": f"Organization/{case.facility_id}"},
            "account": [{"reference": f"Account/{account_id}"}],
        },
    ]
    account: dict[str, Any] = {
        "resourceType": "Account",
        "id": account_id,
        "status": "on-hold" if case.holds else (case.account_status or "active"),
        "subject": [{"reference": case.patient_ref}],
    }
    if case.holds:
        account["meta"] = {"tag": [{"system": ACCOUNT_HOLD, "code": h} for h in case.holds]}
    if case.coverage_ref:
        cov_id = case.coverage_ref.split("/")[-1]
        account["coverage"] = [{"coverage": {"reference": case.coverage_ref}, "priority": 1}]
        out.append(
            {
                "resourceType": "Coverage",
                "id": cov_id,
                "status": "active",
                "beneficiary": {"reference": case.patient_ref},
                "payor": [{"reference": f"Organization/{case.payer_id}"}],
            }
        )
    out.append(account)
    devices, supplies = [], []
    for n, u in enumerate(case.used, start=1):
        out.append(
            {
                "resourceType": "ChargeItemDefinition",
                "id": f"cid-{u.item_id}",
                "url": f"urn:careflow:chargemaster:{u.item_id}",
                "status": "active",
                "code": {"coding": [{"system": ERP_ITEM, "code": u.item_id}]},
                "propertyGroup": [
                    {"priceComponent": [{"type": "base", "amount": _money(u.unit_price)}]}
                ],
            }
        )
        if not u.implant:
            supplies += [{"coding": [{"system": ERP_ITEM, "code": u.item_id}]}] * u.quantity
            continue
        for k in range(1, u.quantity + 1):
            dev_id = f"dev-{case.case_id}-{n}-{k}"
            serial = u.serial if u.quantity == 1 or not u.serial else f"{u.serial}-{k}"
            dev: dict[str, Any] = {
                "resourceType": "Device",
                "id": dev_id,
                "status": "active",
                "type": {"coding": [{"system": ERP_ITEM, "code": u.item_id}]},
                "lotNumber": u.lot,
                "serialNumber": serial,
            }
            if u.udi:
                dev["udiCarrier"] = [{"deviceIdentifier": u.udi}]
            if u.bill_only:
                dev["property"] = [
                    {"type": {"coding": [{"system": ITEM_CLASS, "code": "bill_only"}]}}
                ]
                dev["owner"] = {"reference": f"Organization/{u.supplier_id}"}
            out.append({k2: v for k2, v in dev.items() if v is not None})
            devices.append(
                {
                    "action": {
                        "coding": [
                            {"system": "http://hl7.org/fhir/device-action", "code": "implanted"}
                        ]
                    },
                    "manipulated": {"reference": f"Device/{dev_id}"},
                }
            )
    proc: dict[str, Any] = {
        "resourceType": "Procedure",
        "id": f"proc-{case.case_id}",
        "status": "completed",
        "code": {"coding": [{"system": c.system, "code": c.code} for c in case.procedure_codes]},
        "subject": {"reference": case.patient_ref},
        "encounter": enc_ref,
        "performedPeriod": {
            "start": case.procedure_end.isoformat(),
            "end": case.procedure_end.isoformat(),
        },
    }
    if case.coding_complete:
        proc["reasonCode"] = [
            {"coding": [{"system": d.system, "code": d.code}]} for d in case.diagnosis_codes
        ]
    if case.surgeon_ref:
        proc["performer"] = [{"actor": {"reference": case.surgeon_ref}}]
    if devices:
        proc["focalDevice"] = devices
    if supplies:
        proc["usedCode"] = supplies
    out.append(proc)
    for c in case.charges:
        charge: dict[str, Any] = {
            "resourceType": "ChargeItem",
            "id": c.charge_id,
            "status": c.status,
            "code": {"coding": [{"system": ERP_ITEM, "code": c.item_id}]},
            "subject": {"reference": case.patient_ref},
            "context": enc_ref,
            "quantity": {"value": c.quantity},
            "priceOverride": _money(c.amount),
            "account": [{"reference": f"Account/{account_id}"}],
        }
        if c.entered_at is not None:
            charge["enteredDate"] = c.entered_at.isoformat()
        out.append(charge)
    note: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "id": f"opnote-{case.case_id}",
        "status": "current",
        "docStatus": "final" if case.op_note_signed else "preliminary",
        "type": {"coding": [{"system": LOINC, "code": OP_NOTE}]},
        "subject": {"reference": case.patient_ref},
        "content": [
            {"attachment": {"contentType": "text/plain", "url": f"Binary/opnote-{case.case_id}"}}
        ],
        "context": {"encounter": [enc_ref]},
    }
    if case.op_note_signed and case.surgeon_ref:
        note["authenticator"] = {"reference": case.surgeon_ref}
    out.append(note)
    if case.implant_log:
        out.append(
            {
                "resourceType": "DocumentReference",
                "id": f"implantlog-{case.case_id}",
                "status": "current",
                "docStatus": "final",
                "type": {"coding": [{"system": DOCUMENT_TYPE, "code": IMPLANT_LOG}]},
                "subject": {"reference": case.patient_ref},
                "content": [
                    {
                        "attachment": {
                            "contentType": "text/plain",
                            "url": f"Binary/implantlog-{case.case_id}",
                        }
                    }
                ],
                "context": {"encounter": [enc_ref]},
            }
        )
    return out
