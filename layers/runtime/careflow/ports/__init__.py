"""Ports: what domain logic needs from the outside world.

Each is a Protocol. Adapters under ``careflow.adapters`` implement them against
real protocols (FHIR R4, Da Vinci PAS, ERP REST, DynamoDB, Step Functions,
EventBridge) or as seeded sandboxes; tests pass in-memory fakes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from careflow.canonical.cases import Participant, SurgicalCase
from careflow.canonical.inventory import Expedite, ParLevel, StorageLocation, UsageHistory
from careflow.canonical.payables import (  # payables (issue 11)
    ContractPrice,
    GoodsReceipt,
    GoodsReceiptRequest,
    Invoice,
    InvoiceApproval,
    InvoiceExceptionAction,
    InvoiceStatusChange,
    PurchaseOrder,
)
from careflow.canonical.payer import (
    ClinicalDocument,
    EligibilityRequest,
    EligibilityResponse,
    EncounterCoverage,
    PriorAuthRequest,
    PriorAuthResponse,
)
from careflow.canonical.procurement import (  # -- procurement (issue 11) --
    Budget,
    BudgetReservation,
    BudgetReservationRequest,
    ItemIdentifiers,
    ItemMatch,
    PurchaseOrderRequest,
    PurchaseOrderStatus,
)
from careflow.canonical.revenue import CaseBilling, ClaimReceipt
from careflow.canonical.services import ServiceBooking, ServiceRequest
from careflow.canonical.supply import Requisition, RequisitionRequest, StockPosition, TrayStatus
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
)


class ConnectorError(Exception):
    """A connector call failed for good (bad request, not found, rejected)."""


class ConnectorUnavailable(ConnectorError):
    """A connector is down or throttling: the workflow retries, then routes to a person."""


class EhrPort(Protocol):
    def get_surgical_case(self, appointment_id: str) -> SurgicalCase: ...

    def appointment_participants(self, appointment_id: str) -> Sequence[Participant]: ...

    def encounter_coverage(self, encounter_id: str) -> EncounterCoverage | None:
        """The encounter's patient and primary active coverage, by the encounter's visit
        number (PV1-19, the FHIR Encounter's identifier); None if the EHR has no such
        encounter. Raises ConnectorError when the EHR cannot be read."""
        ...

    def patient_documents(self, patient_ref: str) -> Sequence[ClinicalDocument]:
        """The patient's current documents (FHIR ``DocumentReference?patient=``): id, type
        codings, title/description text; empty when it has none. Raises ConnectorError when
        the EHR cannot be read."""
        ...

    # -- revenue cycle (post-procedure) --
    def case_billing(self, case_id: str) -> CaseBilling | None:
        """What a completed case used (implants by lot and serial), the charges posted for
        its encounter, its documentation, coding and account holds; None if the EHR has no
        such case."""
        ...

    def submit_claim(self, claim: Mapping[str, Any]) -> ClaimReceipt:
        """Hands a FHIR R4 Claim (JSON) to billing; the same claim id is received once."""
        ...


class PayerPort(Protocol):
    def submit_prior_auth(self, request: PriorAuthRequest) -> PriorAuthResponse: ...

    def inquire(self, preauth_ref: str) -> PriorAuthResponse: ...

    def check_eligibility(self, request: EligibilityRequest) -> EligibilityResponse: ...


class ErpPort(Protocol):
    def stock_positions(
        self, facility_id: str, item_ids: Sequence[str]
    ) -> Sequence[StockPosition]: ...

    def create_requisition(self, request: RequisitionRequest) -> Requisition: ...

    # -- inventory (issue 11) --
    def locations(self, facility_id: str) -> Sequence[StorageLocation]:
        """The facility's storage locations that keep par levels."""
        ...

    def par_levels(self, facility_id: str, location_id: str) -> Sequence[ParLevel]:
        """Every item kept at the location: on hand, on order, par, reorder point, class."""
        ...

    def usage_history(
        self, facility_id: str, item_ids: Sequence[str], days: int
    ) -> Sequence[UsageHistory]:
        """Units used outside scheduled cases over the last ``days``, per location and item."""
        ...

    def expedite(self, requisition_id: str, reason: str) -> Expedite:
        """Asks the supplier to deliver the requisition sooner (idempotent)."""
        ...

    # -- payables (issue 11) --
    def invoice(self, invoice_id: str) -> Invoice | None: ...

    def supplier_invoices(self, supplier_id: str, invoice_number: str) -> Sequence[Invoice]:
        """The supplier's invoices with its own number ``invoice_number`` (duplicates)."""
        ...

    def purchase_order(self, po_id: str) -> PurchaseOrder | None: ...

    def receipts(self, po_id: str) -> Sequence[GoodsReceipt]: ...

    def post_goods_receipt(self, request: GoodsReceiptRequest) -> GoodsReceipt:
        """Receives against the purchase order; idempotent on ``request.reference`` (a
        repeat returns the first receipt). More than a line's open quantity, or an item
        that is not the line's, is refused (ConnectorError)."""
        ...

    def contract_price(self, supplier_id: str, item_id: str) -> ContractPrice | None: ...

    def approve_invoice(self, approval: InvoiceApproval) -> InvoiceStatusChange:
        """Approves for payment; idempotent on ``approval.reference``."""
        ...

    def record_invoice_exception_action(
        self, action: InvoiceExceptionAction
    ) -> InvoiceStatusChange:
        """Records an exception's cause and AP's action; idempotent on reference + action."""
        ...

    # -- procurement (issue 11) --
    def crosswalk(self, identifiers: ItemIdentifiers) -> Sequence[ItemMatch]:
        """Every item one of the identifiers names (each match says which), none if none."""
        ...

    def budget(self, cost_center_id: str) -> Budget | None:
        """The cost center's budget this fiscal year; None for a cost center it does not know."""
        ...

    def reserve_budget(self, request: BudgetReservationRequest) -> BudgetReservation:
        """Idempotent on the reference; INSUFFICIENT_FUNDS reserves nothing."""
        ...

    def release_budget(self, reservation_id: str) -> BudgetReservation: ...

    def create_purchase_order(self, request: PurchaseOrderRequest) -> PurchaseOrderStatus:
        """Idempotent on the reference: a repeat returns the purchase order it created."""
        ...

    def purchase_order_status(self, po_id: str) -> PurchaseOrderStatus: ...


class SterileProcessingPort(Protocol):
    def tray_status(self, facility_id: str, tray_ids: Sequence[str]) -> Sequence[TrayStatus]: ...


class WorkforcePort(Protocol):
    """The workforce management system: units, the roster, who else could work a shift."""

    def units(self, facility_id: str) -> Sequence[Unit]: ...

    def roster(
        self, facility_id: str, unit_id: str, shift_start: datetime
    ) -> Sequence[RosterEntry]:
        """Who is rostered on the unit for the shift starting at ``shift_start``."""
        ...

    def staffing_options(
        self, facility_id: str, unit_id: str, shift_start: datetime, skill: str
    ) -> Sequence[StaffingOption]:
        """Float pool, agency, overtime and flex census for the shift, with cost and lead
        time (float pool and agency by skill; overtime: eligible staff of the unit)."""
        ...

    def record_decision(self, decision: StaffingDecision) -> RecordedDecision:
        """Idempotent on ``decision_id``."""
        ...


class TransportPort(Protocol):
    """A transport vendor: books a ride, answers when it can pick the patient up."""

    def book_transport(self, request: ServiceRequest) -> ServiceBooking: ...


class PharmacyPort(Protocol):
    """The pharmacy: fills the discharge medications and delivers them to the bedside."""

    def meds_to_beds(self, request: ServiceRequest) -> ServiceBooking: ...


class StateStore(Protocol):
    def put_instance(
        self, instance: Instance, *, with_entries: Sequence[Milestone | AuditEntry] = ()
    ) -> None:
        """Registers the instance (once: a retried step is not a new instance), then
        ``with_entries``."""
        ...

    def get_instance(self, instance_id: str) -> Instance | None: ...

    def update_instance(
        self, instance: Instance, *, with_entries: Sequence[Milestone | AuditEntry] = ()
    ) -> Instance:
        """Writes if the stored version is ``instance.version``, then ``with_entries``;
        returns it with version + 1."""
        ...

    def record(self, *entries: Milestone | AuditEntry) -> None:
        """Writes milestones and audit entries, in as few requests as the store allows."""
        ...

    def record_milestone(self, milestone: Milestone) -> None: ...

    def milestones(self, instance_id: str) -> Sequence[Milestone]: ...

    def instance_with_milestones(
        self, instance_id: str
    ) -> tuple[Instance | None, Sequence[Milestone]]:
        """The instance (None if there is none) and its milestones, read together."""
        ...

    def record_audit(self, entry: AuditEntry) -> None: ...

    def audit_trail(self, instance_id: str) -> Sequence[AuditEntry]: ...

    def put_task(self, task: HumanTask) -> None: ...

    def get_task(self, task_id: str) -> HumanTask | None: ...

    def update_task(self, task: HumanTask) -> HumanTask: ...

    def open_tasks(self, queue: str, facility_id: str) -> Sequence[HumanTask]: ...

    def tasks_for_instance(self, instance_id: str) -> Sequence[HumanTask]: ...

    def instances_for_subject(self, subject_type: str, subject_id: str) -> Sequence[Instance]: ...

    def instances_by_status(self, workflow_id: str, status: str) -> Sequence[Instance]: ...

    def instances_updated_since(
        self, workflow_id: str, status: str, since: datetime
    ) -> Sequence[Instance]:
        """The workflow's instances in ``status`` last updated at or after ``since`` (UTC)."""
        ...

    def put_wait(self, key: str, token: str, instance_id: str, at: datetime) -> None:
        """Parks a task token until an outside party answers (e.g. a payer's pend)."""
        ...

    def peek_wait(self, key: str) -> tuple[str, str] | None:
        """(token, instance_id) parked under ``key``, left in place; or None."""
        ...

    def take_wait(self, key: str) -> tuple[str, str] | None:
        """Removes and returns (token, instance_id) for ``key``, or None."""
        ...

    def put_early_answer(self, key: str, answer: Mapping[str, Any], at: datetime) -> None:
        """Keeps an answer that arrived before anyone waited for it."""
        ...

    def take_early_answer(self, key: str) -> dict[str, Any] | None: ...

    def park_event(self, parked: ParkedEvent) -> None:
        """Writes the record (again: a re-parked event is ``PARKED`` anew, counted)."""
        ...

    def parked_events(self) -> Sequence[ParkedEvent]:
        """Parked and unrouted records, oldest first."""
        ...

    def get_parked(self, event_id: str) -> ParkedEvent | None: ...

    def mark_redriven(self, event_id: str, at: datetime) -> ParkedEvent:
        """``PARKED`` -> ``REDRIVEN``; raises AlreadyRedriven if it is not ``PARKED``."""
        ...

    def claim_subject(self, record: SubjectRecord) -> SubjectRecord:
        """Writes ``record`` unless its subject has one; returns the subject's record."""
        ...

    def get_subject(
        self, workflow_id: str, facility_id: str, subject_id: str
    ) -> SubjectRecord | None: ...

    def update_subject(self, record: SubjectRecord) -> SubjectRecord:
        """Writes if the stored version is ``record.version``; returns it with version + 1."""
        ...

    def census_entry(self, facility_id: str, encounter_id: str) -> CensusEntry | None: ...

    def put_census_entry(self, entry: CensusEntry) -> bool:
        """Writes the encounter's entry unless the stored one is as new or newer
        (``as_of``); True if written (a repeated or older event changes nothing)."""
        ...

    def census(self, facility_id: str) -> Sequence[CensusEntry]:
        """The facility's census entries (present or not), every unit."""
        ...


class WorkflowEngine(Protocol):
    def start(self, state_machine_arn: str, name: str, payload: Mapping[str, Any]) -> str:
        """Starts an execution; returns its ARN. Raises DuplicateExecution for a used name."""
        ...

    def send_task_success(self, token: str, output: Mapping[str, Any]) -> None: ...

    def send_task_failure(self, token: str, error: str, cause: str) -> None: ...

    def stop(self, execution_arn: str, error: str, cause: str) -> bool:
        """Stops a running execution; False if it had already ended (or never started)."""
        ...


class DuplicateExecution(Exception):
    """An execution with that name already exists: the event was seen before."""


class AlreadyRedriven(Exception):
    """The parked event was redriven already (and not parked again since)."""


class StaleTaskToken(Exception):
    """The execution is no longer waiting on that token (timed out, escalated or ended)."""


class ConcurrentUpdate(Exception):
    """Someone else changed the record first (optimistic lock on its ``version``)."""


class EventPublisher(Protocol):
    def publish(self, source: str, detail_type: str, detail: Mapping[str, Any]) -> None: ...


class ParkingLot(Protocol):
    """Where unprocessable events go, whole, with their reason (an encrypted queue)."""

    def park(self, event: Mapping[str, Any], reason: str, *, event_id: str = "") -> None: ...

    def take(self, event_id: str) -> list[dict[str, Any]]:
        """Removes and returns what was parked under ``event_id`` (oldest first)."""
        ...
