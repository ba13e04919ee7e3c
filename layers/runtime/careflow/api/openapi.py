"""The ``/v1`` API's OpenAPI document, generated from the code: the resolver's routes
(Powertools) with the contract's OAuth scopes as security requirements.

``python -m careflow.api.openapi`` prints it; ``make openapi`` writes ``docs/openapi.json``,
the committed copy a test holds equal to the code (so a change to the API shows in review).
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

from careflow.api.contract import RESOURCE_SERVER, ROUTES, SCOPES, VERSION, scope_name

TITLE = "careflow partner API"
DOC_VERSION = "1.0.0"
SCHEME = "cognito"


def document() -> dict[str, Any]:
    from careflow.api.app import app

    doc: dict[str, Any] = json.loads(app.get_openapi_json_schema(title=TITLE, version=DOC_VERSION))
    doc["info"]["description"] = (
        f"Version {VERSION} in the path. OAuth 2.0 access tokens from the careflow user "
        f"pool; scopes of the resource server `{RESOURCE_SERVER}`. Errors are RFC 9457 "
        "problem details (application/problem+json)."
    )
    doc.setdefault("components", {})["securitySchemes"] = {
        SCHEME: {
            "type": "oauth2",
            "flows": {
                "clientCredentials": {
                    "tokenUrl": "https://<domain>.auth.<region>.amazoncognito.com/oauth2/token",
                    "scopes": {scope_name(name): text for name, text in SCOPES.items()},
                }
            },
        }
    }
    for route in ROUTES:
        operation = doc["paths"][route.path][route.method.lower()]
        operation["summary"] = route.summary
        declared = {p.get("name") for p in operation.get("parameters", []) if p.get("in") == "path"}
        for name in re.findall(r"\{(\w+)\}", route.path):
            if name not in declared:  # the route functions take them as **params
                operation.setdefault("parameters", []).append(
                    {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                )
        operation["security"] = [{SCHEME: [scope_name(route.scope)]}] if route.scope else []
    return doc


def render() -> str:
    return json.dumps(document(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
