"""A Da Vinci PAS payer for the local cloud: ``Claim/$submit``, ``Claim/$inquire``,
``ClaimResponse`` reads, ``CoverageEligibilityRequest``, and pended decisions that the
payer settles later (``due_decisions``), as a real payer's Subscription notification
would announce them. A request that is not a conformant PAS Bundle is refused with an
OperationOutcome and nothing is kept.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlparse

from careflow import clock
from careflow.adapters import pas
from careflow.canonical.payer import AuthDecision
from careflow.localcloud.sandboxes.faults import FaultPlan
from careflow.localcloud.sandboxes.fhir_server import outcome
from careflow.localcloud.sandboxes.http_base import LoopbackServer, SandboxHandler

CODES = {
    AuthDecision.APPROVED: ("A1", "Certified in total"),
    AuthDecision.DENIED: ("A3", "Not Certified"),
    AuthDecision.PENDED: ("A4", "Pended"),
    AuthDecision.MODIFIED: ("A6", "Modified"),
    # careflow acts on none of the others: "contact payer" reads as UNKNOWN (a person)
    AuthDecision.UNKNOWN: ("CT", "Contact Payer"),
}


@dataclass(frozen=True)
class Behaviour:
    """What the payer does with a request for a member: decide now, or pend and decide
    ``after`` later (``final`` None: it never decides)."""

    decision: AuthDecision
    after: timedelta | None = None
    final: AuthDecision | None = None
    # Asks for these documents (LOINC document types) before it decides.
    documents: tuple[str, ...] = ()


@dataclass
class _Authorization:
    ref: str
    response_id: str
    claim: dict[str, Any]
    decision: AuthDecision
    due: datetime | None
    final: AuthDecision | None
    # Document types (LOINC) asked for and not yet attached: the response pends on them.
    documents: tuple[str, ...] = ()
    then: AuthDecision | None = None  # the decision once they are attached


def claim_response(auth: _Authorization, base_url: str) -> dict[str, Any]:
    code, display = CODES.get(auth.decision, CODES[AuthDecision.PENDED])
    items = []
    for i, item in enumerate(auth.claim.get("item") or [{"sequence": 1}]):
        detail = [
            {
                "url": "productOrServiceCode",
                "valueCodeableConcept": item.get("productOrService") or {},
            }
        ]
        items.append(
            {
                "itemSequence": item.get("sequence", i + 1),
                "extension": [
                    {
                        "url": "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/"
                        "extension-itemAuthorizedDetail",
                        "extension": detail,
                    }
                ],
                "adjudication": [
                    {
                        "extension": [
                            {
                                "url": pas.REVIEW_ACTION,
                                "extension": [
                                    {"url": "number", "valueString": auth.ref},
                                    {
                                        "url": pas.REVIEW_ACTION_CODE,
                                        "valueCodeableConcept": {
                                            "coding": [
                                                {
                                                    "system": pas.X12_306,
                                                    "code": code,
                                                    "display": display,
                                                }
                                            ]
                                        },
                                    },
                                ],
                            }
                        ],
                        "category": {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/adjudication",
                                    "code": "submitted",
                                }
                            ]
                        },
                    }
                ],
            }
        )
    response: dict[str, Any] = {
        "resourceType": "ClaimResponse",
        "id": auth.response_id,
        "status": "active",
        "type": auth.claim.get("type"),
        "use": "preauthorization",
        "patient": auth.claim.get("patient"),
        "created": clock.now().isoformat(),
        "insurer": auth.claim.get("insurer"),
        # a logical reference: the response Bundle does not carry the Claim
        "request": {"identifier": (auth.claim.get("identifier") or [{"value": auth.ref}])[0]},
        "outcome": "complete",  # as real payers say even for a pend: read the items
        "preAuthRef": auth.ref,
        "item": items,
    }
    if auth.documents:
        response["communicationRequest"] = [
            {"reference": f"CommunicationRequest/{auth.response_id}-{i}"}
            for i, _ in enumerate(auth.documents)
        ]
    return response


def document_requests(auth: _Authorization) -> list[dict[str, Any]]:
    """PAS additional documentation: one CommunicationRequest per document type asked for,
    referenced from ``ClaimResponse.communicationRequest``."""
    return [
        {
            "resourceType": "CommunicationRequest",
            "id": f"{auth.response_id}-{i}",
            "status": "active",
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://hl7.org/fhir/us/davinci-pas/CodeSystem/PASTempCodes",
                            "code": "additional-documentation",
                        }
                    ]
                }
            ],
            "payload": [
                {
                    "extension": [
                        {
                            "url": pas.PAYLOAD_CONTENT_MODIFIER,
                            "valueCodeableConcept": {
                                "coding": [{"system": pas.LOINC, "code": code}]
                            },
                        }
                    ],
                    "contentString": f"Please send the document of type {code}",
                }
            ],
            "about": [{"reference": f"ClaimResponse/{auth.response_id}"}],
        }
        for i, code in enumerate(auth.documents)
    ]


class PayerSandboxServer(LoopbackServer):
    def __init__(self, *, port: int = 0, default: Behaviour | None = None) -> None:
        super().__init__(port)
        self.behaviours: dict[str, Behaviour] = {}  # by Coverage id or subscriber id
        self.default = default or Behaviour(AuthDecision.APPROVED)
        self.faults = FaultPlan()
        self.authorizations: dict[str, _Authorization] = {}
        self.refused = 0
        # rest-hook subscriptions: endpoint URL -> payload ("id-only" | "full-resource")
        self.subscriptions: dict[str, str] = {}
        self.delivered: list[tuple[str, int]] = []  # (endpoint, HTTP status) per notification
        self._undelivered: list[str] = []
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return f"{self.origin}/fhir"

    def behaviour_for(self, bundle: Mapping[str, Any]) -> Behaviour:
        for entry in bundle.get("entry") or []:
            resource = entry.get("resource") or {}
            if resource.get("resourceType") == "Coverage":
                keys = [resource.get("id"), resource.get("subscriberId")]
                keys += [i.get("value") for i in resource.get("identifier") or []]
                for key in keys:
                    if key in self.behaviours:
                        return self.behaviours[key]
        return self.default

    def submit(self, bundle: Mapping[str, Any]) -> dict[str, Any]:
        claim = pas.validate_request_bundle(bundle)  # PasError: refused, nothing kept
        behaviour = self.behaviour_for(bundle)
        trace = next((i.get("value") for i in claim.get("identifier") or []), None)
        with self._lock:
            for existing in self.authorizations.values():  # a resubmission is the same request
                if trace and existing.claim.get("identifier", [{}])[0].get("value") == trace:
                    if existing.documents and pas.attachments(claim):
                        # the documents asked for are attached: the payer decides now
                        existing.documents = ()
                        existing.decision = existing.then or AuthDecision.APPROVED
                        existing.claim = dict(claim)
                    return self.response_bundle(existing)
            ref = f"PA-{len(self.authorizations) + 10001}"
            due = clock.now() + behaviour.after if behaviour.after else None
            auth = _Authorization(
                ref=ref,
                response_id=str(uuid.uuid4()),
                claim=dict(claim),
                decision=AuthDecision.PENDED if behaviour.documents else behaviour.decision,
                due=None if behaviour.documents else due,
                final=behaviour.final,
                documents=() if pas.attachments(claim) else behaviour.documents,
                then=behaviour.decision,
            )
            if not auth.documents:
                auth.decision, auth.due = behaviour.decision, due
            self.authorizations[ref] = auth
        return self.response_bundle(auth)

    def response_bundle(self, auth: _Authorization) -> dict[str, Any]:
        """A PAS Response Bundle: the ClaimResponse first, then what it references (the
        patient and the insurer, as the request named them; the document requests)."""
        response = claim_response(auth, self.base_url)
        referenced = []
        for field in ("patient", "insurer"):
            kind, _, rid = str((response.get(field) or {}).get("reference", "")).partition("/")
            if kind and rid:
                referenced.append({"resourceType": kind, "id": rid})
        return {
            "resourceType": "Bundle",
            "identifier": {"system": f"{self.base_url}/transaction", "value": auth.response_id},
            "type": "collection",
            "timestamp": clock.now().isoformat(),
            "entry": [
                {
                    "fullUrl": f"{self.base_url}/ClaimResponse/{auth.response_id}",
                    "resource": response,
                },
                *(
                    {"fullUrl": f"{self.base_url}/{r['resourceType']}/{r['id']}", "resource": r}
                    for r in (*referenced, *document_requests(auth))
                ),
            ],
        }

    def inquire(self, bundle: Mapping[str, Any]) -> dict[str, Any]:
        claim = pas.validate_request_bundle(bundle)
        refs = [i.get("value") for i in claim.get("identifier") or []]
        refs += [str(r) for item in claim.get("item") or [] for r in [item.get("preAuthRef")] if r]
        with self._lock:
            for ref in refs:
                if ref in self.authorizations:
                    return self.response_bundle(self.authorizations[ref])
        raise pas.PasError("Claim.identifier: no authorization matches the inquiry")

    def due_decisions(self, now: datetime | None = None) -> list[str]:
        """Settles the pends that are due; returns their references (to notify)."""
        now = now or clock.now()
        settled = []
        with self._lock:
            for auth in self.authorizations.values():
                if (
                    auth.decision is AuthDecision.PENDED
                    and auth.final
                    and auth.due
                    and auth.due <= now
                ):
                    auth.decision = auth.final
                    settled.append(auth.ref)
        return settled

    def notification(self, ref: str, *, full_resource: bool) -> dict[str, Any]:
        """The Subscriptions-Backport notification a payer sends when ``ref`` is decided."""
        auth = self.authorizations[ref]
        focus = f"{self.base_url}/ClaimResponse/{auth.response_id}"
        status = {
            "resourceType": "Parameters",
            "parameter": [
                {
                    "name": "subscription",
                    "valueReference": {"reference": f"{self.base_url}/Subscription/careflow"},
                },
                {"name": "topic", "valueCanonical": pas.PAS_TOPIC},
                {"name": "type", "valueCode": "event-notification"},
                {
                    "name": "notification-event",
                    "part": [
                        {"name": "event-number", "valueString": "1"},
                        {"name": "timestamp", "valueInstant": clock.now().isoformat()},
                        {"name": "focus", "valueReference": {"reference": focus}},
                    ],
                },
            ],
        }
        entries: list[dict[str, Any]] = [
            {"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": status}
        ]
        if full_resource:
            entries.append({"fullUrl": focus, "resource": claim_response(auth, self.base_url)})
        return {
            "resourceType": "Bundle",
            "type": "history",
            "timestamp": clock.now().isoformat(),
            "entry": entries,
        }

    def subscribe(self, endpoint: str, payload: str = "id-only") -> None:
        """A rest-hook Subscription to the PAS topic (the R4 Subscriptions Backport)."""
        if payload not in ("id-only", "full-resource"):
            raise ValueError("payload must be id-only or full-resource")
        self.subscriptions[endpoint] = payload

    def notify_due(self, now: datetime | None = None) -> int:
        """Settles the pends that are due and POSTs a notification for each to every
        subscriber. A subscriber that fails gets the notification again next time."""
        import httpx

        sent = 0
        for ref in [*self._undelivered, *self.due_decisions(now)]:
            ok = True
            for endpoint, payload in self.subscriptions.items():
                bundle = self.notification(ref, full_resource=payload == "full-resource")
                try:
                    status = httpx.post(
                        endpoint,
                        json=bundle,
                        timeout=5.0,
                        headers={"Content-Type": "application/fhir+json"},
                    )
                    code = status.status_code
                except httpx.HTTPError:
                    code = 0
                self.delivered.append((endpoint, code))
                ok = ok and 200 <= code < 300
            if ok:
                sent += 1
                if ref in self._undelivered:
                    self._undelivered.remove(ref)
            elif ref not in self._undelivered:
                self._undelivered.append(ref)
        return sent

    def eligibility(self, request: Mapping[str, Any]) -> dict[str, Any]:
        if request.get("resourceType") != "CoverageEligibilityRequest":
            raise pas.PasError("expected a CoverageEligibilityRequest")
        insurance = request.get("insurance") or []
        inforce = bool(insurance) and all(i.get("coverage") for i in insurance)
        return {
            "resourceType": "CoverageEligibilityResponse",
            "id": str(uuid.uuid4()),
            "status": "active",
            "purpose": request.get("purpose") or ["validation"],
            "patient": request.get("patient"),
            "created": clock.now().isoformat(),
            "request": {"reference": "CoverageEligibilityRequest/submitted"},
            "outcome": "complete",
            "insurer": request.get("insurer"),
            "insurance": [
                {
                    "coverage": i.get("coverage"),
                    "inforce": True,
                    "item": [
                        {
                            "category": {"coding": [{"code": "surgical"}]},
                            "benefit": [],
                            "authorizationRequired": True,
                        }
                    ],
                }
                for i in insurance
            ]
            if inforce
            else [],
        }

    def start(self) -> PayerSandboxServer:
        server = self

        class Handler(SandboxHandler):
            json_type = error_type = "application/fhir+json"
            malformed_body = b"<html>gateway error</html>"

            def error_body(self, status: int, kind: str, message: str) -> Any:
                return outcome({"unavailable": "transient"}.get(kind, kind), message)

            def do_GET(self) -> None:
                if self.apply_fault(server.faults):
                    return
                parts = [p for p in urlparse(self.path).path.split("/") if p]
                if parts[:2] == ["fhir", "ClaimResponse"] and len(parts) == 3:
                    for auth in list(server.authorizations.values()):
                        if auth.response_id == parts[2]:
                            self._send(200, claim_response(auth, server.base_url))
                            return
                self._send(404, outcome("not-found", "no such resource"))

            def do_POST(self) -> None:
                # Read the body first: on a kept-alive connection, an unread body would be
                # taken for the next request.
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                if self.apply_fault(server.faults):
                    return
                path = urlparse(self.path).path.rstrip("/")
                try:
                    body = json.loads(raw or b"null")
                except ValueError:
                    self._send(400, outcome("structure", "the body is not JSON"))
                    return
                try:
                    if path.endswith("/Claim/$submit"):
                        self._send(200, server.submit(body))
                    elif path.endswith("/Claim/$inquire"):
                        self._send(200, server.inquire(body))
                    elif path.endswith("/CoverageEligibilityRequest"):
                        self._send(200, server.eligibility(body))
                    else:
                        self._send(404, outcome("not-found", "no such operation"))
                except pas.PasError as exc:
                    server.refused += 1
                    self._send(400, outcome("invalid", exc.reason))

        self._serve(Handler, "payer-sandbox")
        return self
