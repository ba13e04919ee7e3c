"""The claims careflow adds to Cognito access tokens: the pre token generation trigger's
logic (event version 3, which covers client-credentials tokens), free of AWS calls.

A partner's app client (client credentials) has no user and so no ``custom:facilities``
attribute: its facilities are configuration (``careflow:api`` partners' ``facilities``),
looked up here by the token's client id. A person's access token gets the same claims
from their ``custom:facilities`` and ``custom:roles`` attributes (Cognito puts custom
attributes in ID tokens only). The claim names and format are the ones
:mod:`careflow.api.auth` reads and the local issuer mints: comma-separated strings.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from careflow.api.auth import FACILITIES_CLAIM, ROLES_CLAIM

CLIENT_CREDENTIALS = "TokenGeneration_ClientCredentials"
FACILITY_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"


def claim_value(values: Sequence[str]) -> str:
    """The claim's format: ids joined by commas, sorted, without duplicates."""
    return ",".join(sorted(set(values)))


def parse_mapping(text: str) -> dict[str, str]:
    """``{"<client id>": ["fac-a", ...]}`` (JSON) as client id -> the claim's value."""
    doc = json.loads(text)
    if not isinstance(doc, dict):
        raise ValueError("the partner facilities mapping is not a JSON object")
    mapping: dict[str, str] = {}
    for client_id, facilities in doc.items():
        if not isinstance(facilities, list) or not all(
            isinstance(f, str) and re.match(FACILITY_ID_PATTERN, f) for f in facilities
        ):
            raise ValueError("a partner's facilities are not a list of facility ids")
        mapping[str(client_id)] = claim_value(facilities)
    return mapping


def _access_token_claims(event: dict[str, Any]) -> dict[str, Any]:
    response = event.setdefault("response", {})
    details = response.get("claimsAndScopeOverrideDetails") or {}
    response["claimsAndScopeOverrideDetails"] = details
    access = details.get("accessTokenGeneration") or {}
    details["accessTokenGeneration"] = access
    claims: dict[str, Any] = access.get("claimsToAddOrOverride") or {}
    access["claimsToAddOrOverride"] = claims
    return claims


def add_claims(event: dict[str, Any], partners: Mapping[str, str]) -> dict[str, Any]:
    """The event with its response filled: ``custom:facilities`` (and for a person
    ``custom:roles``) in the access token. A client with no facilities configured, or a
    person without the attribute, gets no claim: the API then refuses what needs one."""
    if event.get("triggerSource") == CLIENT_CREDENTIALS:
        client_id = (event.get("callerContext") or {}).get("clientId")
        facilities = partners.get(client_id) if isinstance(client_id, str) else None
        if facilities:
            _access_token_claims(event)[FACILITIES_CLAIM] = facilities
        return event
    attributes = (event.get("request") or {}).get("userAttributes") or {}
    found = {
        claim: attributes[claim]
        for claim in (FACILITIES_CLAIM, ROLES_CLAIM)
        if isinstance(attributes.get(claim), str) and attributes[claim]
    }
    if found:
        _access_token_claims(event).update(found)
    return event
