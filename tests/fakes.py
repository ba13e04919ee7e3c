"""In-memory fakes of the ports, for logic tests (no moto, no boto3)."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from careflow.canonical.workforce import (
    CensusEntry,
    RecordedDecision,
    RosterEntry,
    StaffingDecision,
    StaffingOption,
    Unit,
)
from careflow.domain.records import (
    AuditEntry,
    HumanTask,
    Instance,
    Milestone,
    ParkedEvent,
    SubjectRecord,
    TaskStatus,
)
from careflow.ports import AlreadyRedriven, ConcurrentUpdate, DuplicateExecution, StaleTaskToken


class InMemoryStateStore:
    def __init__(self) -> None:
        self.instances: dict[str, Instance] = {}
        self.milestone_log: list[Milestone] = []
        self.audit: list[AuditEntry] = []
        self.tasks: dict[str, HumanTask] = {}
        self.waits: dict[str, tuple[str, str]] = {}
        self.answers: dict[str, dict[str, Any]] = {}
        self.parked: list[ParkedEvent] = []
        self.subjects: dict[tuple[str, str, str], SubjectRecord] = {}
        self.census_entries: dict[tuple[str, str], CensusEntry] = {}
        self._lock = threading.Lock()

    def put_instance(self, instance: Instance, *, with_entries=()) -> None:
        self.instances.setdefault(instance.instance_id, instance)
        self.record(*with_entries)

    def record(self, *entries) -> None:
        for entry in entries:
            if isinstance(entry, Milestone):
                self.milestone_log.append(entry)
            else:
                self.audit.append(entry)

    def get_instance(self, instance_id: str) -> Instance | None:
        return self.instances.get(instance_id)

    def update_instance(self, instance: Instance, *, with_entries=()) -> Instance:
        with self._lock:
            current = self.instances.get(instance.instance_id)
            if current is not None and current.version != instance.version:
                raise ConcurrentUpdate(instance.instance_id)
            new = instance.model_copy(update={"version": instance.version + 1})
            self.instances[instance.instance_id] = new
        self.record(*with_entries)
        return new

    def record_milestone(self, milestone: Milestone) -> None:
        self.milestone_log.append(milestone)

    def milestones(self, instance_id: str) -> list[Milestone]:
        return [m for m in self.milestone_log if m.instance_id == instance_id]

    def instance_with_milestones(self, instance_id: str):
        return self.get_instance(instance_id), self.milestones(instance_id)

    def record_audit(self, entry: AuditEntry) -> None:
        self.audit.append(entry)

    def audit_trail(self, instance_id: str) -> list[AuditEntry]:
        return [a for a in self.audit if a.instance_id == instance_id]

    def put_task(self, task: HumanTask) -> None:
        self.tasks[task.task_id] = task

    def get_task(self, task_id: str) -> HumanTask | None:
        return self.tasks.get(task_id)

    def update_task(self, task: HumanTask) -> HumanTask:
        with self._lock:
            current = self.tasks.get(task.task_id)
            if current is not None and current.version != task.version:
                raise ConcurrentUpdate(task.task_id)
            new = task.model_copy(update={"version": task.version + 1})
            self.tasks[task.task_id] = new
            return new

    def open_tasks(self, queue: str, facility_id: str) -> list[HumanTask]:
        return sorted(
            (
                t
                for t in self.tasks.values()
                if t.queue == queue
                and t.facility_id == facility_id
                and t.status in (TaskStatus.OPEN, TaskStatus.CLAIMED)
            ),
            key=lambda t: t.due_at,
        )

    def tasks_for_instance(self, instance_id: str) -> list[HumanTask]:
        return [t for t in self.tasks.values() if t.instance_id == instance_id]

    def instances_for_subject(self, subject_type: str, subject_id: str) -> list[Instance]:
        return [
            i
            for i in self.instances.values()
            if i.subject_type == subject_type and i.subject_id == subject_id
        ]

    def instances_by_status(self, workflow_id: str, status: str) -> list[Instance]:
        return [
            i
            for i in self.instances.values()
            if i.workflow_id == workflow_id and i.status.value == status
        ]

    def instances_updated_since(
        self, workflow_id: str, status: str, since: datetime
    ) -> list[Instance]:
        return [i for i in self.instances_by_status(workflow_id, status) if i.updated_at >= since]

    def put_wait(self, key: str, token: str, instance_id: str, at: datetime) -> None:
        self.waits[key] = (token, instance_id)

    def peek_wait(self, key: str) -> tuple[str, str] | None:
        return self.waits.get(key)

    def take_wait(self, key: str) -> tuple[str, str] | None:
        return self.waits.pop(key, None)

    def put_early_answer(self, key: str, answer: Mapping[str, Any], at: datetime) -> None:
        self.answers[key] = dict(answer)

    def take_early_answer(self, key: str) -> dict[str, Any] | None:
        return self.answers.pop(key, None)

    def park_event(self, parked: ParkedEvent) -> None:
        before = self.get_parked(parked.event_id)
        if before is not None:
            self.parked.remove(before)
            parked = parked.model_copy(update={"times_parked": before.times_parked + 1})
        self.parked.append(parked)

    def parked_events(self) -> list[ParkedEvent]:
        return sorted(self.parked, key=lambda p: p.parked_at)

    def get_parked(self, event_id: str) -> ParkedEvent | None:
        return next((p for p in self.parked if p.event_id == event_id), None)

    def mark_redriven(self, event_id: str, at: datetime) -> ParkedEvent:
        with self._lock:
            parked = self.get_parked(event_id)
            if parked is None or parked.status != "PARKED":
                raise AlreadyRedriven(event_id)
            new = parked.model_copy(update={"status": "REDRIVEN", "redriven_at": at})
            self.parked[self.parked.index(parked)] = new
            return new

    def claim_subject(self, record: SubjectRecord) -> SubjectRecord:
        key = (record.workflow_id, record.facility_id, record.subject_id)
        with self._lock:
            return self.subjects.setdefault(key, record)

    def get_subject(
        self, workflow_id: str, facility_id: str, subject_id: str
    ) -> SubjectRecord | None:
        return self.subjects.get((workflow_id, facility_id, subject_id))

    def update_subject(self, record: SubjectRecord) -> SubjectRecord:
        key = (record.workflow_id, record.facility_id, record.subject_id)
        with self._lock:
            current = self.subjects.get(key)
            if current is not None and current.version != record.version:
                raise ConcurrentUpdate(record.subject_id)
            new = record.model_copy(update={"version": record.version + 1})
            self.subjects[key] = new
            return new

    def census_entry(self, facility_id: str, encounter_id: str) -> CensusEntry | None:
        return self.census_entries.get((facility_id, encounter_id))

    def put_census_entry(self, entry: CensusEntry) -> bool:
        with self._lock:
            key = (entry.facility_id, entry.encounter_id)
            stored = self.census_entries.get(key)
            if stored is not None and stored.as_of >= entry.as_of:
                return False
            self.census_entries[key] = entry
            return True

    def census(self, facility_id: str) -> list[CensusEntry]:
        return [e for (f, _), e in self.census_entries.items() if f == facility_id]


class FakeEngine:
    def __init__(self) -> None:
        self.started: dict[str, dict[str, Any]] = {}
        self.successes: list[tuple[str, dict[str, Any]]] = []
        self.failures: list[tuple[str, str, str]] = []
        self.stale: set[str] = set()
        self.stopped: list[tuple[str, str, str]] = []
        self.fail_next_start = False  # a start that raises after the subject was claimed

    def stop(self, execution_arn: str, error: str, cause: str) -> bool:
        name = execution_arn.rsplit(":", 1)[-1]
        if name not in self.started or any(a == execution_arn for a, _, _ in self.stopped):
            return False
        self.stopped.append((execution_arn, error, cause))
        return True

    def start(self, state_machine_arn: str, name: str, payload: Mapping[str, Any]) -> str:
        if self.fail_next_start:
            self.fail_next_start = False
            raise ConnectionError("Step Functions is unreachable")
        if name in self.started:
            raise DuplicateExecution(name)
        self.started[name] = dict(payload)
        return f"{state_machine_arn.replace(':stateMachine:', ':execution:')}:{name}"

    def send_task_success(self, token: str, output: Mapping[str, Any]) -> None:
        if token in self.stale:
            raise StaleTaskToken(token)
        self.successes.append((token, dict(output)))

    def send_task_failure(self, token: str, error: str, cause: str) -> None:
        self.failures.append((token, error, cause))


class FakePublisher:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, dict[str, Any]]] = []

    def publish(self, source: str, detail_type: str, detail: Mapping[str, Any]) -> None:
        self.events.append((source, detail_type, dict(detail)))

    def types(self) -> list[str]:
        return [d for _, d, _ in self.events]


class FakeParking:
    def __init__(self) -> None:
        self.parked: list[tuple[dict[str, Any], str]] = []
        self.ids: list[str] = []

    def park(self, event: Mapping[str, Any], reason: str, *, event_id: str = "") -> None:
        self.parked.append((dict(event), reason))
        self.ids.append(event_id)

    def take(self, event_id: str) -> list[dict[str, Any]]:
        taken = [e for (e, _), i in zip(self.parked, self.ids, strict=True) if i == event_id]
        kept = [(p, i) for p, i in zip(self.parked, self.ids, strict=True) if i != event_id]
        self.parked = [p for p, _ in kept]
        self.ids = [i for _, i in kept]
        return taken


class FakeEhr:
    """Cases and their appointment participants, by appointment id; encounters' coverage
    (``EncounterCoverage``) by visit number, None for an encounter it does not hold."""

    def __init__(self, cases=(), participants=None, encounters=None) -> None:
        self.cases = {c.appointment_id: c for c in cases}
        self.participants = dict(participants or {})
        self.encounters = dict(encounters or {})
        self.encounters_asked: list[str] = []

    def get_surgical_case(self, appointment_id: str):
        return self.cases[appointment_id]

    def appointment_participants(self, appointment_id: str):
        return self.participants.get(appointment_id, ())

    def encounter_coverage(self, encounter_id: str):
        self.encounters_asked.append(encounter_id)
        return self.encounters.get(encounter_id)

    # -- a patient's documents (ClinicalDocument), by patient reference --
    @property
    def documents(self) -> dict[str, Any]:
        return self.__dict__.setdefault("_documents", {})

    def patient_documents(self, patient_ref: str):
        return tuple(self.documents.get(patient_ref, ()))

    # -- revenue cycle: completed cases (CaseBilling) by case id, and the claims received --
    @property
    def billing(self) -> dict[str, Any]:
        return self.__dict__.setdefault("_billing", {})

    @property
    def claims(self) -> list[Any]:
        return self.__dict__.setdefault("_claims", [])

    def case_billing(self, case_id: str):
        return self.billing.get(case_id)

    def submit_claim(self, claim):
        from careflow.canonical.revenue import ClaimReceipt

        self.claims.append(dict(claim))
        return ClaimReceipt(claim_id=str(claim["id"]), status="active")


class FakePayer:
    """Answers prior authorizations and eligibility checks as scripted; records the requests."""

    def __init__(self, auth=None, eligibility=None, inquiries=None) -> None:
        self.auth = auth
        self.eligibility = eligibility
        self.inquiries = dict(inquiries or {})
        self.submitted: list[Any] = []
        self.checked: list[Any] = []
        self.inquired: list[str] = []

    def submit_prior_auth(self, request):
        self.submitted.append(request)
        return self.auth

    def inquire(self, preauth_ref: str):
        from careflow.ports import ConnectorError

        self.inquired.append(preauth_ref)
        if preauth_ref not in self.inquiries:
            raise ConnectorError(f"no authorization {preauth_ref}")
        return self.inquiries[preauth_ref]

    def check_eligibility(self, request):
        self.checked.append(request)
        return self.eligibility


class FakeErp:
    def __init__(self, positions=(), expected_delivery=None) -> None:
        self.positions = list(positions)
        self.expected_delivery = expected_delivery
        self.requisitions: list[Any] = []

    def stock_positions(self, facility_id: str, item_ids):
        return [p for p in self.positions if p.facility_id == facility_id and p.item_id in item_ids]

    def create_requisition(self, request):
        from careflow.canonical.supply import Requisition

        self.requisitions.append(request)
        return Requisition(
            requisition_id=f"REQ-{len(self.requisitions)}",
            status="submitted",
            expected_delivery=self.expected_delivery or request.needed_by,
        )

    # -- inventory (issue 11) --
    def set_inventory(self, locations=(), par_levels=(), usage=()) -> FakeErp:
        """Locations, par levels and usage history the test sets (canonical records)."""
        self._locations = list(locations)
        self._par_levels = list(par_levels)
        self._usage = list(usage)
        return self

    def locations(self, facility_id: str):
        return [x for x in getattr(self, "_locations", []) if x.facility_id == facility_id]

    def par_levels(self, facility_id: str, location_id: str):
        return [
            p
            for p in getattr(self, "_par_levels", [])
            if p.facility_id == facility_id and p.location_id == location_id
        ]

    def usage_history(self, facility_id: str, item_ids, days: int):
        return [
            u.model_copy(update={"days": days, "quantity": round(u.daily_average * days)})
            for u in getattr(self, "_usage", [])
            if u.facility_id == facility_id and u.item_id in item_ids
        ]

    def expedite(self, requisition_id: str, reason: str):
        from careflow.canonical.inventory import Expedite

        self.expedited = [*getattr(self, "expedited", []), (requisition_id, reason)]
        index = int(requisition_id.removeprefix("REQ-")) - 1
        return Expedite(
            requisition_id=requisition_id,
            status="submitted",
            expedited=True,
            expected_delivery=self.requisitions[index].needed_by,
        )

    # -- payables (issue 11) --
    @property
    def ap(self) -> Any:
        """Invoices, POs, receipts and contract prices set by the test; AP's records kept."""
        from types import SimpleNamespace

        if "_ap" not in self.__dict__:
            self._ap = SimpleNamespace(
                invoices={}, pos={}, receipts={}, contracts={}, approvals=[], actions=[]
            )
        return self._ap

    def add_invoice(self, invoice, po=None, receipts=(), contracts=()) -> None:
        self.ap.invoices[invoice.invoice_id] = invoice
        if po is not None:
            self.ap.pos[po.po_id] = po
            self.ap.receipts[po.po_id] = list(receipts)
        for c in contracts:
            self.ap.contracts[(c.supplier_id, c.item_id)] = c

    def invoice(self, invoice_id: str):
        return self.ap.invoices.get(invoice_id)

    def supplier_invoices(self, supplier_id: str, invoice_number: str):
        return [
            i
            for i in self.ap.invoices.values()
            if i.supplier_id == supplier_id and i.invoice_number == invoice_number
        ]

    def purchase_order(self, po_id: str):
        return self.ap.pos.get(po_id)

    def receipts(self, po_id: str):
        return list(self.ap.receipts.get(po_id, []))

    def contract_price(self, supplier_id: str, item_id: str):
        return self.ap.contracts.get((supplier_id, item_id))

    def post_goods_receipt(self, request):
        """Posts once per reference (a repeat returns the first); every call is kept in
        ``ap.receipt_requests``, the receipts in ``ap.posted`` by reference."""
        from careflow.canonical.payables import GoodsReceipt

        self.ap.__dict__.setdefault("receipt_requests", []).append(request)  # every call
        posted = self.ap.__dict__.setdefault("posted", {})
        if request.reference in posted:
            return posted[request.reference]
        held = self.ap.receipts.setdefault(request.po_id, [])
        receipt = GoodsReceipt(
            receipt_id=f"GR-{request.po_id}-{len(held) + 1}",
            po_id=request.po_id,
            received_at=request.received_at,
            lines=request.lines,
            received_at_use=request.received_at_use,
            reference=request.reference,
        )
        held.append(receipt)
        posted[request.reference] = receipt
        return receipt

    def approve_invoice(self, approval):
        from careflow.canonical.payables import InvoiceStatusChange

        self.ap.approvals.append(approval)
        return InvoiceStatusChange(
            invoice_id=approval.invoice_id, status="APPROVED", action_id="APR-1"
        )

    def record_invoice_exception_action(self, action):
        from careflow.canonical.payables import InvoiceStatusChange

        self.ap.actions.append(action)
        status = "REJECTED" if action.action in ("RETURN", "REJECT") else "EXCEPTION"
        return InvoiceStatusChange(
            invoice_id=action.invoice_id, status=status, action_id=f"APX-{len(self.ap.actions)}"
        )

    # -- procurement (issue 11) --
    @property
    def procurement(self):
        """The sandbox's seeded item master, budgets and purchase orders, in memory."""
        from datetime import UTC

        from careflow.adapters.sandbox_procurement import ProcurementBook

        if "_procurement" not in self.__dict__:
            self.__dict__["_procurement"] = ProcurementBook()
            self.procurement_calls: list[tuple[str, Any]] = []
            self.procurement_now = datetime(2026, 3, 2, 14, 5, tzinfo=UTC)
        return self.__dict__["_procurement"]

    def crosswalk(self, identifiers):
        matches = self.procurement.crosswalk(identifiers)
        self.procurement_calls.append(("crosswalk", identifiers))
        return matches

    def budget(self, cost_center_id: str):
        return self.procurement.budget(cost_center_id, self.procurement_now)

    def reserve_budget(self, request):
        held = self.procurement.reserve(request, self.procurement_now)
        self.procurement_calls.append(("reserve_budget", request))
        return held

    def release_budget(self, reservation_id: str):
        self.procurement_calls.append(("release_budget", reservation_id))
        return self.procurement.release(reservation_id, self.procurement_now)

    def create_purchase_order(self, request):
        self.procurement_calls.append(("create_purchase_order", request))
        return self.procurement.create_purchase_order(request, self.procurement_now)

    def purchase_order_status(self, po_id: str):
        from careflow.ports import ConnectorError

        found = self.procurement.purchase_order(po_id)
        if found is None:
            raise ConnectorError(f"purchase order {po_id} is unknown")
        return found


class FakeWorkforce:
    """Units, a roster and options set by the test; decisions kept as recorded."""

    def __init__(self, units=(), roster=(), options=()) -> None:
        self._units: list[Unit] = list(units)
        self._roster: list[RosterEntry] = list(roster)
        self._options: list[StaffingOption] = list(options)
        self.decisions: dict[str, StaffingDecision] = {}

    def units(self, facility_id: str) -> list[Unit]:
        return [u for u in self._units if u.facility_id == facility_id]

    def roster(self, facility_id: str, unit_id: str, shift_start: datetime) -> list[RosterEntry]:
        return [r for r in self._roster if r.unit_id == unit_id and r.shift_start == shift_start]

    def staffing_options(self, facility_id, unit_id, shift_start, skill) -> list[StaffingOption]:
        return list(self._options)

    def record_decision(self, decision: StaffingDecision) -> RecordedDecision:
        seen = decision.decision_id in self.decisions
        self.decisions.setdefault(decision.decision_id, decision)
        return RecordedDecision(
            decision_id=decision.decision_id, status="DUPLICATE" if seen else "ACCEPTED"
        )


class FakeServices:
    """A transport vendor or pharmacy: ready ``lead`` after the request, or when needed."""

    def __init__(self, now, lead=timedelta(hours=1)) -> None:
        self.now, self.lead, self.requests = now, lead, []

    def _book(self, request):
        from careflow.canonical.services import ServiceBooking

        self.requests.append(request)
        return ServiceBooking(
            booking_id=f"BK-{len(self.requests)}",
            status="BOOKED",
            ready_at=max(self.now + self.lead, request.needed_by),
        )

    def book_transport(self, request):
        return self._book(request)

    def meds_to_beds(self, request):
        return self._book(request.model_copy(update={"needed_by": self.now}))


class FakeSterile:
    def __init__(self, trays=()) -> None:
        self.trays = list(trays)

    def tray_status(self, facility_id: str, tray_ids):
        return [t for t in self.trays if t.tray_id in tray_ids]


# -- who may work human tasks: a small policy and directory of their own -------------------
TASK_POLICY_VERSION = "surgical-readiness@1"


def task_policies() -> Any:
    """A policy store whose ``surgical-readiness@1`` says who works and supervises each
    queue of the tests' tasks (``queue_roles``), as the packaged policies do."""
    from careflow.policies import MemoryPolicyStore, parse_document

    def row(queue: str, work: list[str], supervise: list[str]) -> dict[str, Any]:
        return {
            "id": queue,
            "when": {"queue": queue},
            "then": {"work": work, "supervise": supervise},
        }

    return MemoryPolicyStore(
        parse_document(
            {
                "kind": "enterprise",
                "name": "surgical-readiness",
                "version": "1",
                "tables": {
                    "queue_roles": {
                        "inputs": {"queue": "string"},
                        "outputs": {"work": "string_list", "supervise": "string_list"},
                        "rows": [
                            row("care_coordinator", ["care_coordinator"], ["cc_lead"]),
                            row("supply_chain_buyer", ["supply_chain_buyer"], ["supply_manager"]),
                            row("utilization_review_nurse", ["ur_nurse"], ["director"]),
                            row("department_director", ["director"], ["director"]),
                        ],
                    }
                },
            },
            "tests/fakes.py",
        )
    )


def task_directory() -> Any:
    from careflow.actors import Actor, Directory

    return Directory(
        [
            Actor(id="user:cc-1", roles=("care_coordinator",)),
            Actor(id="user:cc-2", roles=("care_coordinator",)),
            Actor(id="user:cc-lead", roles=("cc_lead",)),
            Actor(id="user:buyer-1", roles=("supply_chain_buyer",)),
            Actor(id="user:director-1", roles=("director",)),
        ]
    )


class FakePredictor:
    """The predictor port answering every input with one label at one confidence (the rest
    spread evenly over ``classes``); remembers the features it saw."""

    def __init__(
        self, label: str, confidence: float, classes: Sequence[str], reasons: tuple[str, ...] = ()
    ) -> None:
        self.label, self.confidence, self.classes, self.reasons = (
            label,
            confidence,
            classes,
            reasons,
        )
        self.seen: list[dict[str, Any]] = []

    def predict(self, model_id: str, features: Mapping[str, Any], *, backend: str = "local") -> Any:
        from careflow.ml.port import Prediction

        self.seen.append(dict(features))
        rest = (1 - self.confidence) / (len(self.classes) - 1)
        return Prediction(
            model_id=model_id,
            version="1.test",
            label=self.label,
            confidence=self.confidence,
            scores={c: self.confidence if c == self.label else rest for c in self.classes},
            reasons=self.reasons,
            input_hash="h",
        )


def ai_models_policies(root: Any, model_id: str, mode: str, threshold: float = 0.6) -> Any:
    """The repository's packaged policies copied under ``root`` (a test's tmp_path), with the
    ai-models row of ``model_id`` set to ``mode`` at ``threshold`` (local backend)."""
    import json
    import shutil

    from careflow.policies import FilePolicyStore

    target = root / "policies"
    shutil.copytree(FilePolicyStore().root, target)
    path = target / "enterprise" / "ai-models.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    for row in doc["tables"]["models"]["rows"]:
        if row["id"] == model_id:
            row["then"] = {"mode": mode, "threshold": threshold, "backend": "local"}
    path.write_text(json.dumps(doc), encoding="utf-8")
    return FilePolicyStore(target)
