"""The operations page on the local cloud: ``/ops`` beside ``/v1`` on the API's port.

- ``GET /ops``: the page (one HTML file, its script and style under ``/ops/static/``;
  nothing from another origin, so it works with no internet);
- ``GET /ops/sign-in``: who may sign in: each role of the actor directory with the people
  holding it, and the facilities careflow serves;
- ``POST /ops/sign-in`` ``{"role", "facility", "person"?}``: an access token from the
  cloud's issuer for that person (the first holding the role, unless one is named),
  narrowed to that one role and facility, with the scopes a person on the page needs
  (``workflows.read``, ``tasks.work``, ``policies.read``), for 8 hours.

The page then calls ``/v1`` with that token like any client: the gateway checks it, the
handler checks scopes, facility and roles, so the page sees no more than the API gives
that role. This is the local stand-in for a hospital's sign-in (Cognito's hosted UI on
AWS); it listens on 127.0.0.1 only, like the rest of the local cloud.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from functools import cache
from importlib import resources
from typing import Any

from careflow.api.problems import ApiProblem

SCOPES = ("workflows.read", "tasks.work", "policies.read")
LIFETIME = timedelta(hours=8)  # a shift
MAX_SIGN_IN_BYTES = 4096
_STATIC = {
    "ops.js": "text/javascript; charset=utf-8",
    "ops.css": "text/css; charset=utf-8",
}
# The page's own files only: no inline script or style, nothing from elsewhere.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
_JSON = {"Content-Type": "application/json", "Cache-Control": "no-store"}
_ROLE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


@cache
def _static(name: str) -> str:
    """One of the page's files, read once per process (they ship with the package)."""
    return resources.files("careflow.localcloud").joinpath("ops_static", name).read_text("utf-8")


def people_by_role(directory: Any) -> dict[str, list[str]]:
    """Role -> the ids (``user:...``) of the people holding it, sorted."""
    found: dict[str, list[str]] = {}
    for actor in directory.ids():
        for role in sorted(directory.roles_of(actor)):
            found.setdefault(role, []).append(actor)
    return {role: sorted(ids) for role, ids in sorted(found.items())}


class OpsSite:
    """Answers ``/ops`` requests: (status, headers, body) or an :class:`ApiProblem`."""

    def __init__(self, issuer: Any) -> None:
        self.issuer = issuer

    def answer(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, str], str]:
        if path in ("/ops", "/ops/"):
            self._only(method, "GET")
            headers = {"Content-Type": "text/html; charset=utf-8", **SECURITY_HEADERS}
            return 200, headers, _static("index.html")
        if path.startswith("/ops/static/"):
            self._only(method, "GET")
            name = path.removeprefix("/ops/static/")
            if name not in _STATIC:
                raise ApiProblem(404, "Not Found", "There is no such file of the page.")
            return 200, {"Content-Type": _STATIC[name], **SECURITY_HEADERS}, _static(name)
        if path == "/ops/sign-in":
            if method == "GET":
                return 200, _JSON, json.dumps(self.choices())
            self._only(method, "POST")
            return 200, _JSON, json.dumps(self.sign_in(body))
        raise ApiProblem(404, "Not Found", "There is no such page: the operations page is /ops.")

    @staticmethod
    def _only(method: str, allowed: str) -> None:
        if method != allowed and not (allowed == "GET" and method == "HEAD"):
            raise ApiProblem(405, "Method Not Allowed", f"Use {allowed} here.")

    @staticmethod
    def choices() -> dict[str, Any]:
        from careflow import actors, facilities

        return {
            "roles": [
                {"role": role, "people": ids}
                for role, ids in people_by_role(actors.directory()).items()
            ],
            "facilities": [
                {"id": f.id, "name": f.name}
                for f in sorted(facilities.facilities().values(), key=lambda f: f.id)
            ],
        }

    def sign_in(self, body: bytes) -> dict[str, Any]:
        from careflow import actors, facilities

        if len(body) > MAX_SIGN_IN_BYTES:
            raise ApiProblem(413, "Content Too Large", "The sign-in is a small JSON object.")
        try:
            asked = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ApiProblem(
                400, "Bad Request", 'Send JSON: {"role": ..., "facility": ...}.'
            ) from None
        if not isinstance(asked, dict):
            raise ApiProblem(400, "Bad Request", 'Send JSON: {"role": ..., "facility": ...}.')
        role, facility_id, person = asked.get("role"), asked.get("facility"), asked.get("person")
        if not isinstance(role, str) or not _ROLE.match(role):
            raise ApiProblem(400, "Bad Request", "Pick a role.")
        if not isinstance(facility_id, str) or not facilities.is_known(facility_id):
            raise ApiProblem(400, "Bad Request", "Pick a facility careflow serves.")
        holders = people_by_role(actors.directory()).get(role)
        if not holders:
            raise ApiProblem(400, "Bad Request", "Nobody in the directory holds that role.")
        if person is None or person == "":
            person = holders[0]
        if not isinstance(person, str) or person not in holders:
            raise ApiProblem(400, "Bad Request", "That person does not hold that role.")
        user = person.removeprefix("user:")
        token = self.issuer.mint(
            client="careflow-ops-page",
            user=user,
            scopes=SCOPES,
            facilities=(facility_id,),
            roles=(role,),
            lifetime=LIFETIME,
        )
        facility = facilities.facility(facility_id)
        return {
            "token": token,
            "person": person,
            "role": role,
            "facility": facility_id,
            "facility_name": facility.name if facility is not None else facility_id,
            "expires_in": int(LIFETIME.total_seconds()),
        }
