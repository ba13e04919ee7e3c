"""Who is calling the ``/v1`` API: the claims API Gateway's Cognito authorizer passed on.

Defence in depth behind the authorizer: the handler reads the claims again
(``requestContext.authorizer.claims``, the Cognito user pool authorizer's form) and
checks each route's scope from :mod:`careflow.api.contract` itself. The facility claim
(``custom:facilities``) limits every read and write.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from careflow.actors import ACTOR_PATTERN
from careflow.api.contract import RESOURCE_SERVER
from careflow.api.problems import ApiProblem

_ACTOR = re.compile(ACTOR_PATTERN)
# The token claims careflow reads (comma-separated ids), from a person's custom attributes
# or, for a partner's client-credentials token, added by the pre token generation trigger
# (careflow.api.token_claims); the local issuer mints the same.
FACILITIES_CLAIM = "custom:facilities"
ROLES_CLAIM = "custom:roles"


@dataclass(frozen=True)
class Caller:
    """The token's identity: a person (``username``) or a client (``client_id``)."""

    principal: str  # username, else client_id: whose idempotency keys these are
    username: str | None
    scopes: frozenset[str]  # without the resource server prefix: workflows.read
    facilities: frozenset[str]
    roles: frozenset[str] | None  # None: the token names no roles (the directory decides)

    @property
    def actor(self) -> str | None:
        """``user:<username>`` when the token is a person's and the name is an actor id."""
        if self.username is None:
            return None
        actor = f"user:{self.username}"
        return actor if _ACTOR.match(actor) else None


def _split(value: Any, sep: str | None) -> frozenset[str]:
    if not isinstance(value, str):
        return frozenset()
    return frozenset(part.strip() for part in value.split(sep) if part.strip())


def caller_from(event: Mapping[str, Any]) -> Caller | None:
    """The caller named by the event's claims; None when there are no usable claims."""
    context = event.get("requestContext")
    authorizer = context.get("authorizer") if isinstance(context, Mapping) else None
    claims = authorizer.get("claims") if isinstance(authorizer, Mapping) else None
    if not isinstance(claims, Mapping) or not claims:
        return None
    username = claims.get("username") or claims.get("cognito:username")
    principal = username or claims.get("client_id")
    if not isinstance(principal, str) or not principal:
        return None
    prefix = f"{RESOURCE_SERVER}/"
    scopes = frozenset(
        s.removeprefix(prefix) for s in _split(claims.get("scope"), None) if s.startswith(prefix)
    )
    roles_claim = claims.get(ROLES_CLAIM)
    return Caller(
        principal=principal,
        username=username if isinstance(username, str) and username else None,
        scopes=scopes,
        facilities=_split(claims.get(FACILITIES_CLAIM), ","),
        roles=_split(roles_claim, ",") if roles_claim is not None else None,
    )


def authorize(event: Mapping[str, Any], scope: str | None) -> Caller | None:
    """The caller, if the route's ``scope`` allows them: 401 without claims, 403 without
    the scope. A route without a scope (health) needs no token."""
    if scope is None:
        return caller_from(event)
    caller = caller_from(event)
    if caller is None:
        raise ApiProblem(401, "Unauthorized", "The request carries no token claims.")
    if scope not in caller.scopes:
        raise ApiProblem(403, "Forbidden", f"The token lacks the scope {RESOURCE_SERVER}/{scope}.")
    return caller


class ClaimedRoles:
    """The actor directory, narrowed for the caller by the token's ``custom:roles``: a
    token may take roles away from its person, never add one. Anyone else (a reassign's
    ``to``) is judged by the directory alone."""

    def __init__(self, directory: Any, caller: Caller) -> None:
        self._directory = directory
        self._caller = caller

    def roles_of(self, actor: str) -> frozenset[str]:
        roles: frozenset[str] = self._directory.roles_of(actor)
        if actor == self._caller.actor and self._caller.roles is not None:
            return roles & self._caller.roles
        return roles
