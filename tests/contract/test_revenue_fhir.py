"""The revenue cycle's FHIR reads on the real HL7 R4 examples (``tests/fixtures/fhir-r4``,
unedited), read as their authors meant them; then a completed case served by the EHR
sandbox over HTTP and read back by the FHIR EHR adapter into the same billing record the
in-process sandbox holds, and its claim handed over once."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from careflow.adapters.ehr_fhir import FhirEhrAdapter
from careflow.adapters.fhir import revenue as rv
from careflow.adapters.fhir.mappers import FhirMappingError
from careflow.adapters.fhir_rest import FhirRestClient
from careflow.adapters.http import HttpClient
from careflow.adapters.sandbox import Sandbox
from careflow.adapters.sandbox_revenue import CPT, ICD10, RevenueSeed, used_item
from careflow.canonical.datatypes import Coding
from careflow.localcloud.sandboxes.ehr_revenue_seed import revenue_resources
from careflow.localcloud.sandboxes.fhir_server import FhirSandboxServer, FhirStore
from careflow.policies import FilePolicyStore, resolve
from careflow.ports import ConnectorError
from careflow.workflows.revenue_cycle import rules as r
from tests import fixtures

NOW = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)


def example(name: str) -> dict:
    return json.loads((fixtures.FHIR_R4 / name).read_text())


def test_the_chargeitem_example_is_one_billable_charge_with_its_override_price():
    c = rv.charge_item(example("chargeitem-example.json"))
    assert (c.charge_id, c.status, c.quantity) == ("example", "billable", 1)
    assert c.code is not None and c.code.code == "01510" and c.code.system is None
    assert c.amount == Decimal("40")  # priceOverride (EUR in the example)
    assert c.entered_at == datetime(2017, 1, 25, 22, 55, 4, tzinfo=UTC)


def test_a_charge_without_an_erp_item_is_no_supply_charge():
    """The example's charge is a German outpatient fee code: no chargemaster supply line."""
    store = FhirStore()
    store.put(example("chargeitem-example.json"))
    found = rv._charges(store.search, "Encounter/example", lambda _: Decimal(0))
    assert found == []


def test_the_implant_procedure_example_names_its_implanted_device():
    p = rv.procedure(example("procedure-example-implant.json"))
    assert p.status == "completed"
    assert [(c.system, c.code) for c in p.codes] == [("http://snomed.info/sct", "25267002")]
    assert p.devices == ("Device/example-pacemaker",)
    assert p.diagnoses == ()  # the reason is text only: not coded
    assert p.end == datetime(2015, 4, 5, tzinfo=UTC)  # a date: its midnight
    assert p.surgeon_ref == "Practitioner/example"
    assert p.supplies == ()


@pytest.mark.parametrize("name", ["device-example.json", "device-example-f001-feedingtube.json"])
def test_device_examples_carry_no_erp_item_lot_or_serial(name):
    d = rv.device(example(name))
    assert (d.item_id, d.udi, d.lot, d.serial, d.bill_only) == (None, None, None, None, False)


def test_the_documentreference_example_is_an_unsigned_note_of_another_type():
    d = rv.document(example("documentreference-example.json"))
    assert d.status == "current" and d.doc_status == "preliminary"
    assert not d.signed  # authenticated, but preliminary
    assert [(t.system, t.code) for t in d.types] == [("http://loinc.org", "34108-1")]
    final = {**example("documentreference-example.json"), "docStatus": "final"}
    assert rv.document(final).signed


def test_account_examples_are_active_with_their_coverages_in_order():
    a = rv.account(example("account-example.json"))
    assert (a.status, a.holds, a.coverage_refs) == ("active", (), ("Coverage/7546D",))
    g = rv.account(example("account-example-with-guarantor.json"))
    assert g.coverage_refs == ("Coverage/9876B1", "Coverage/7546D")


@pytest.mark.parametrize(
    "name", ["claim-example-institutional.json", "claim-example-professional.json"]
)
def test_claim_examples_are_receipts_and_our_claim_is_as_valid(name):
    raw = example(name)
    receipt = rv.claim_receipt(raw, raw)
    assert receipt.claim_id == raw["id"] and receipt.status == "active"
    ours = r.build_claim(
        _case(), claim_id="clm-x", authorization="PA-1", policy=_policy(), created=NOW
    )
    assert rv.claim_receipt(ours, ours).claim_id == "clm-x"
    assert ours["type"]["coding"][0]["system"] == raw["type"]["coding"][0]["system"]


def test_a_resource_of_another_type_is_refused_by_name():
    with pytest.raises(FhirMappingError, match="expected Device, got Account"):
        rv.device(example("account-example.json"))


# -- a completed case over HTTP -------------------------------------------------------------
def _policy() -> r.Policy:
    snapshot = resolve(r.POLICY, "fac-north", at=NOW, store=FilePolicyStore())
    return r.revenue_policy(snapshot, facility_id="fac-north", time_zone="America/Chicago")


def _case(**seed):
    sb = Sandbox(seeded_at=NOW)
    return sb.add_completed_case(
        RevenueSeed(
            "case-7901",
            "fac-north",
            Coding(system=CPT, code="29888"),
            Coding(system=ICD10, code="S83.511A"),
            (
                used_item("IMP-ACL-SCR-9", 1, lot="LOT-1", serial="SN-1"),
                used_item("IMP-TKA-FEM-5", 1, lot="LOT-2", serial="SN-2"),
                used_item("SUP-CEMENT-40", 2),
            ),
            **seed,
        ),
        encounter_id="V-7901",
        procedure_end=NOW - timedelta(hours=30),
    )


@pytest.fixture
def served():
    store = FhirStore()
    server = FhirSandboxServer(store).start()
    yield store, FhirEhrAdapter(FhirRestClient(HttpClient("ehr", server.base_url)))
    server.stop()


def _strip(case):
    """What FHIR carries of a case: prices as decimals, codings without displays."""
    return case.model_dump(mode="json", exclude={"op_note_status", "account_status"})


def test_a_completed_case_reads_back_as_the_sandbox_holds_it(served):
    store, ehr = served
    held = _case(uncharged=("SUP-CEMENT-40",), holds=("pfs-review",), op_note_signed=False)
    for resource in revenue_resources(held):
        store.put(resource)
    read = ehr.case_billing("case-7901")
    assert read is not None
    assert (read.encounter_id, read.facility_id, read.payer_id) == (
        "V-7901",
        "fac-north",
        held.payer_id,
    )
    assert read.holds == ("pfs-review",) and not read.op_note_signed and read.implant_log
    assert read.coding_complete and read.procedure_end == held.procedure_end
    assert [m.model_dump() for m in r.missing_charges(read.used, read.charges)] == [
        m.model_dump() for m in r.missing_charges(held.used, held.charges)
    ]
    by_item = {u.item_id: u for u in read.used}
    assert (
        by_item["IMP-ACL-SCR-9"].bill_only and by_item["IMP-ACL-SCR-9"].supplier_id == "sup-arthrex"
    )
    assert (by_item["IMP-TKA-FEM-5"].lot, by_item["IMP-TKA-FEM-5"].serial) == ("LOT-2", "SN-2")
    assert by_item["SUP-CEMENT-40"].quantity == 2 and by_item[
        "SUP-CEMENT-40"
    ].unit_price == Decimal("92")
    assert ehr.case_billing("case-nope") is None


def test_uncoded_case_and_claim_handed_over_once(served):
    store, ehr = served
    held = _case(coding_complete=False)
    for resource in revenue_resources(held):
        store.put(resource)
    read = ehr.case_billing("case-7901")
    assert read is not None and not read.coding_complete and read.diagnosis_codes == ()
    claim = r.build_claim(
        held, claim_id="clm-case-7901", authorization="PA-9", policy=_policy(), created=NOW
    )
    first, again = ehr.submit_claim(claim), ehr.submit_claim(claim)
    assert first.claim_id == again.claim_id == "clm-case-7901"
    assert len(store.search("Claim", {})) == 1


def test_a_case_without_its_procedure_is_a_clear_connector_error(served):
    store, ehr = served
    for resource in revenue_resources(_case()):
        if resource["resourceType"] != "Procedure":
            store.put(resource)
    with pytest.raises(ConnectorError, match="no completed procedure"):
        ehr.case_billing("case-7901")
