"""Da Vinci Prior Authorization Support (PAS) documents, read as their authors mean them.

The payer's decision is per item, in the X12 306 ``reviewAction`` code carried by the
``extension-reviewAction`` extension of ``ClaimResponse.item.adjudication`` (A1 certified
in total, A3 not certified, A4 pended, A6 modified, the authorized version in ``addItem``
linked by ``itemSequence``). ``ClaimResponse.outcome`` does not tell a pend: a pended
response can say "complete". A response Bundle has the ClaimResponse first; a request
Bundle has the Claim first and every reference of the Claim resolves inside the Bundle.

A ClaimResponse is read with ``fhir.resources.R4B`` into its canonical record
(:mod:`careflow.adapters.fhir.mappers`), and the decision taken from that record. Bundle
and notification structure, and the request rules, are PAS rules that the generic R4B
models do not enforce: those are checked here on the JSON.

Read strictly: what is not a PAS response at all (not a Bundle, no entries, not a
ClaimResponse first, not valid R4) raises :class:`PasError`; a response that can be read
but breaks a PAS rule (an item without a reviewAction, a reference to a resource the
Bundle does not hold, a required element missing) is read with its ``conformance``
problems listed, one sentence each, and careflow does not act on it: a person does. A
review action careflow does not know is ``UNKNOWN``, never a pend.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from careflow.adapters.fhir import mappers
from careflow.canonical.payer import AuthDecision, PriorAuthItem, PriorAuthResponse

X12_306 = "https://codesystem.x12.org/005010/306"
REVIEW_ACTION = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/extension-reviewAction"
REVIEW_ACTION_CODE = (
    "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/extension-reviewActionCode"
)
PAS_TOPIC = "http://hl7.org/fhir/us/davinci-pas/SubscriptionTopic/PASSubscriptionTopic"

# X12 306 codes careflow acts on; any other (e.g. CT "contact payer", or a code that is not
# in the code system) is UNKNOWN: a person reads the response.
REVIEW_ACTIONS = {
    "A1": AuthDecision.APPROVED,  # certified in total
    "A2": AuthDecision.PARTIAL,  # certified, partial
    "A3": AuthDecision.DENIED,  # not certified
    "A4": AuthDecision.PENDED,  # pended
    "A6": AuthDecision.MODIFIED,  # modified
}


class PasError(ValueError):
    """A document that is not what PAS says it must be. ``reason`` is one line, with field
    paths and no values (values may be PHI)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _entries(bundle: Mapping[str, Any]) -> list[dict[str, Any]]:
    if not isinstance(bundle, Mapping) or bundle.get("resourceType") != "Bundle":
        raise PasError("not a FHIR Bundle")
    entries = bundle.get("entry")
    if not isinstance(entries, list) or not entries:
        raise PasError("Bundle.entry: the Bundle has no entries")
    for i, entry in enumerate(entries):
        if not isinstance(entry, Mapping) or not isinstance(entry.get("resource"), Mapping):
            raise PasError(f"Bundle.entry[{i}].resource: missing")
    return entries


def _codes(concept: Any) -> Iterator[tuple[str | None, str]]:
    if isinstance(concept, Mapping):
        for coding in concept.get("coding") or []:
            if isinstance(coding, Mapping) and coding.get("code"):
                yield coding.get("system"), str(coding["code"])


def read_claim_response(
    resource: Mapping[str, Any], path: str = "ClaimResponse"
) -> PriorAuthResponse:
    """The decision of one ClaimResponse, item by item, from the reviewAction codes of its
    canonical record (read with ``fhir.resources.R4B``), with its conformance problems."""
    if resource.get("resourceType") != "ClaimResponse":
        raise PasError(f"{path}: expected a ClaimResponse")
    if resource.get("outcome") == "error" or resource.get("error"):
        raise PasError(f"{path}.outcome: the payer returned an error response")
    try:
        response = mappers.claim_response(resource)
    except mappers.FhirMappingError as exc:  # names the path, never a value
        raise PasError(f"{path}: {exc}") from None
    problems: list[str] = []
    # PAS ClaimResponse (base profile): status and use are fixed patterns
    if response.status != "active":
        problems.append(f"{path}.status is not 'active' (PAS ClaimResponse pattern)")
    if response.use != "preauthorization":
        problems.append(f"{path}.use is not 'preauthorization' (PAS ClaimResponse pattern)")
    items: list[PriorAuthItem] = []
    numbers: list[str] = []
    # addItem.itemSequence is a list (R4): the items each authorized version replaces.
    modified = {n for add in response.add_items for n in add.item_sequences}
    for i, item in enumerate(response.items):
        where = f"{path}.item[{i}].adjudication"
        with_extension = [a for a in item.adjudications if a.review_action_codes]
        actions = [
            (coding.code, adjudication.review_action_number)
            for adjudication in item.adjudications
            for coding in adjudication.review_action_codes
            if coding.code and coding.system in (X12_306, None)
        ]
        code: str | None = None
        if actions:
            code, number = actions[0]
            decision = REVIEW_ACTIONS.get(code or "", AuthDecision.UNKNOWN)
            if number:
                numbers.append(number)
        elif with_extension:
            problems.append(
                f"{where}.extension(reviewAction).reviewActionCode has no X12 306 coding"
            )
            decision = AuthDecision.UNKNOWN
        else:
            problems.append(f"{where}.extension(reviewAction) is missing")
            decision = AuthDecision.UNKNOWN
        if decision is AuthDecision.APPROVED and item.item_sequence in modified:
            decision = AuthDecision.MODIFIED
        product = item.authorized_product.codes() if item.authorized_product else ()
        items.append(
            PriorAuthItem(
                sequence=item.item_sequence,
                code=product[0] if product else "",
                decision=decision,
                review_action=code,
            )
        )
    if not items:
        problems.append(f"{path}.item is missing: the ClaimResponse decides no item")
    preauth_ref = response.pre_auth_ref or (numbers[0] if numbers else None)
    if preauth_ref is None:
        preauth_ref = next((i.value for i in response.identifiers if i.value), None)
    return PriorAuthResponse(
        decision=overall(items) if items else AuthDecision.UNKNOWN,
        preauth_ref=preauth_ref,
        items=tuple(items),
        conformance=tuple(problems),
    )


def overall(items: Sequence[PriorAuthItem]) -> AuthDecision:
    """An item careflow cannot read makes the whole response UNKNOWN (a person reads it);
    then a pend anywhere pends the request; otherwise all-equal items decide it; a mix of
    certified and not certified is PARTIAL; certified with modifications is MODIFIED."""
    decisions = {i.decision for i in items}
    if AuthDecision.UNKNOWN in decisions:
        return AuthDecision.UNKNOWN
    if AuthDecision.PENDED in decisions:
        return AuthDecision.PENDED
    if len(decisions) == 1:
        return decisions.pop()
    if decisions <= {AuthDecision.APPROVED, AuthDecision.MODIFIED}:
        return AuthDecision.MODIFIED
    return AuthDecision.PARTIAL


def _known(entries: Sequence[Mapping[str, Any]]) -> set[str]:
    """What a reference may name to resolve inside the Bundle: each entry's fullUrl, and
    ``Type/id``."""
    known: set[str] = set()
    for entry in entries:
        resource = entry.get("resource") or {}
        if entry.get("fullUrl"):
            known.add(str(entry["fullUrl"]))
        if resource.get("id"):
            known.add(f"{resource.get('resourceType')}/{resource['id']}")
    return known


def _resolves(ref: str, known: set[str]) -> bool:
    return ref in known or any(url.endswith("/" + ref) for url in known)


def _bundle_only(ref: str) -> bool:
    """A reference only the Bundle can resolve: relative (``Type/id``) or ``urn:``. An
    absolute URL may point at the payer's server; ``#id`` at a contained resource."""
    return not ref.startswith(("#", "http://", "https://"))


def response_bundle_conformance(bundle: Mapping[str, Any]) -> tuple[str, ...]:
    """The PAS Response Bundle rules (common to PAS 1.1 to 2.2) that careflow checks:
    ``type`` collection, ``timestamp``, a ``fullUrl`` on every entry, and every reference
    of every entry resolving inside the Bundle. One sentence per problem, no values."""
    entries = _entries(bundle)
    problems: list[str] = []
    if bundle.get("type") != "collection":
        problems.append("Bundle.type is not 'collection' (PAS Response Bundle: fixed value)")
    if not bundle.get("timestamp"):
        problems.append("Bundle.timestamp is missing (PAS Response Bundle: 1..1)")
    for i, entry in enumerate(entries):
        if not entry.get("fullUrl"):
            problems.append(f"Bundle.entry[{i}].fullUrl is missing (PAS Response Bundle: 1..1)")
    known = _known(entries)
    for i, entry in enumerate(entries):
        resource = entry["resource"]
        for path, ref in _references(resource):
            if _bundle_only(ref) and not _resolves(ref, known):
                kind = ref.split("/")[0] if "/" in ref and not ref.startswith("urn:") else "a"
                target = "a resource" if kind == "a" else f"a {kind}"
                problems.append(
                    f"Bundle.entry[{i}].resource.{path} references {target} "
                    "that is not in the Bundle"
                )
    return tuple(problems)


def read_response_bundle(bundle: Mapping[str, Any]) -> PriorAuthResponse:
    """A PAS response Bundle: its first entry must be the ClaimResponse. What breaks a
    PAS rule short of that is listed in ``conformance``."""
    entries = _entries(bundle)
    first = entries[0]["resource"]
    if first.get("resourceType") != "ClaimResponse":
        raise PasError(
            "Bundle.entry[0]: a PAS response starts with a ClaimResponse, found "
            f"{first.get('resourceType') or 'a resource without a type'}"
        )
    response = read_claim_response(first, "Bundle.entry[0].resource")
    problems = (*response_bundle_conformance(bundle), *response.conformance)
    response = response.model_copy(update={"conformance": problems})
    wanted = documents_requested(first, entries)
    if wanted:
        response = response.model_copy(
            update={"documents_requested": wanted, "reason": "additional documentation requested"}
        )
    return response


# PAS additional documentation: ClaimResponse.communicationRequest -> CommunicationRequest,
# whose payload names the document type (LOINC) in the content-modifier extension.
LOINC = "http://loinc.org"
PAYLOAD_CONTENT_MODIFIER = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/extension-communicationRequestPayloadContentModifier"
ATTACHMENT_CATEGORY = "http://hl7.org/fhir/us/davinci-pas/CodeSystem/PASTempCodes"


def documents_requested(
    claim_response: Mapping[str, Any], entries: Sequence[Mapping[str, Any]]
) -> tuple[str, ...]:
    """The document types the payer asks for before it decides (empty: none)."""
    wanted = {
        str(ref.get("reference", "")).rsplit("/", 1)[-1]
        for ref in claim_response.get("communicationRequest") or []
        if isinstance(ref, Mapping)
    }
    codes: list[str] = []
    for entry in entries:
        resource = entry.get("resource") or {}
        if resource.get("resourceType") != "CommunicationRequest":
            continue
        if resource.get("id") not in wanted:
            continue
        for payload in resource.get("payload") or []:
            for ext in payload.get("extension") or []:
                if ext.get("url") == PAYLOAD_CONTENT_MODIFIER:
                    codes.extend(code for _, code in _codes(ext.get("valueCodeableConcept")))
    return tuple(dict.fromkeys(codes))


def attachments(claim: Mapping[str, Any]) -> tuple[str, ...]:
    """The documents a Claim carries as supportingInfo (category additional documentation)."""
    found = []
    for info in claim.get("supportingInfo") or []:
        if not isinstance(info, Mapping):
            continue
        category = {code for _, code in _codes(info.get("category"))}
        reference = (info.get("valueReference") or {}).get("reference")
        if "additionalInformation" in category and reference:
            found.append(str(reference))
    return tuple(found)


@dataclass(frozen=True)
class Notification:
    """A Subscriptions-Backport notification for the PAS topic."""

    subscription: str | None
    topic: str | None
    focus: tuple[str, ...]
    decisions: tuple[PriorAuthResponse, ...] = field(default=())

    @property
    def id_only(self) -> bool:
        return not self.decisions


def _is_claim_response_ref(ref: str) -> bool:
    """A focus the payer connector can fetch: ``ClaimResponse/<id>`` (relative or
    absolute), or ``urn:uuid:<id>`` (the ClaimResponse's id)."""
    if ref.startswith("urn:uuid:"):
        return len(ref) > len("urn:uuid:")
    parts = ref.rstrip("/").split("/")
    return len(parts) >= 2 and parts[-2] == "ClaimResponse" and bool(parts[-1])


def read_notification(bundle: Mapping[str, Any]) -> Notification:
    """Reads a notification Bundle (``history``, SubscriptionStatus first). Full-resource
    notifications carry the ClaimResponses (the entries their focus names); id-only ones
    only their references (focus), which the payer connector then fetches.

    A notification whose focus does not resolve (none at all, an entry that is not a
    ClaimResponse, or a reference that names no ClaimResponse) is a :class:`PasError`:
    there is nothing to act on, and nothing to fetch."""
    entries = _entries(bundle)
    if bundle.get("type") != "history":
        raise PasError("Bundle.type: a notification Bundle has type 'history'")
    status = entries[0]["resource"]
    if status.get("resourceType") not in ("Parameters", "SubscriptionStatus"):
        raise PasError("Bundle.entry[0]: a notification starts with the subscription status")
    subscription = topic = None
    focus: list[str] = []
    for param in status.get("parameter") or []:
        name = param.get("name")
        if name == "subscription":
            subscription = (param.get("valueReference") or {}).get("reference")
        elif name == "topic":
            topic = param.get("valueCanonical") or param.get("valueUri")
        elif name == "notification-event":
            for part in param.get("part") or []:
                if part.get("name") == "focus":
                    ref = (part.get("valueReference") or {}).get("reference")
                    if ref:
                        focus.append(str(ref))
    where = "Bundle.entry[0].resource.parameter(notification-event).part(focus)"
    if not focus:
        raise PasError(f"{where} is missing: the notification names no ClaimResponse")
    by_url: dict[str, int] = {}
    for i, entry in enumerate(entries):
        if i == 0:
            continue
        resource = entry["resource"]
        if entry.get("fullUrl"):
            by_url[str(entry["fullUrl"])] = i
        if resource.get("id"):
            by_url.setdefault(f"{resource.get('resourceType')}/{resource['id']}", i)
    decisions: list[PriorAuthResponse] = []
    for ref in focus:
        index = by_url.get(ref)
        if index is None:
            index = next((i for url, i in by_url.items() if url.endswith("/" + ref)), None)
        if index is not None:
            resource = entries[index]["resource"]
            if resource.get("resourceType") != "ClaimResponse":
                raise PasError(
                    f"{where} names Bundle.entry[{index}], a "
                    f"{resource.get('resourceType') or 'resource without a type'}, "
                    "not a ClaimResponse"
                )
            decisions.append(read_claim_response(resource, f"Bundle.entry[{index}].resource"))
        elif not _is_claim_response_ref(ref):
            raise PasError(f"{where} names no ClaimResponse the payer connector can fetch")
    if decisions and len(decisions) != len(focus):
        raise PasError(f"{where}: some focus resources are in the Bundle and some are not")
    return Notification(
        subscription=subscription, topic=topic, focus=tuple(focus), decisions=tuple(decisions)
    )


def _references(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                yield path or "reference", value
            else:
                yield from _references(value, f"{path}.{key}" if path else key)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _references(value, f"{path}[{i}]")


def validate_request_bundle(bundle: Mapping[str, Any]) -> Mapping[str, Any]:
    """A PAS request Bundle: Claim first, and every reference of the Claim resolves to an
    entry (by fullUrl, or by type and id). Returns the Claim."""
    entries = _entries(bundle)
    claim = entries[0]["resource"]
    if claim.get("resourceType") != "Claim":
        raise PasError(
            "Bundle.entry[0]: a PAS request starts with a Claim, found "
            f"{claim.get('resourceType') or 'a resource without a type'}"
        )
    if claim.get("use") != "preauthorization":
        raise PasError("Bundle.entry[0].resource.use: must be 'preauthorization'")
    known = _known(entries)
    for path, ref in _references(claim):
        if ref.startswith("#"):
            continue  # contained
        if _resolves(ref, known):
            continue
        raise PasError(f"Claim.{path}: references {ref.split('/')[0]} not in the Bundle")
    return claim


def decision_summary(document: Mapping[str, Any]) -> dict[str, Any]:
    """What ``careflow pas decision`` prints for a response Bundle, a notification Bundle
    or a bare ClaimResponse: the decision, its items, the authorization number, and the
    ``conformance`` problems (empty when the document keeps the PAS rules careflow
    checks)."""

    def summary(response: PriorAuthResponse) -> dict[str, Any]:
        return {
            "decision": response.decision.value,
            "items": [i.model_dump(mode="json") for i in response.items],
            "preauth_ref": response.preauth_ref,
            "conformance": list(response.conformance),
        }

    if not isinstance(document, Mapping):
        raise PasError("not a JSON object")
    if document.get("resourceType") == "ClaimResponse":
        return summary(read_claim_response(document))
    if document.get("resourceType") == "Claim":
        raise PasError(
            "a Claim is a PAS request: give a response Bundle, a notification or a ClaimResponse"
        )
    if document.get("resourceType") == "Bundle" and document.get("type") == "history":
        note = read_notification(document)
        if note.id_only:
            return {
                "decision": None,
                "items": [],
                "preauth_ref": None,
                "notification": "id-only",
                "focus": list(note.focus),
                "conformance": [],
            }
        result = summary(note.decisions[0])
        result["notification"] = "full-resource"
        return result
    return summary(read_response_bundle(document))
