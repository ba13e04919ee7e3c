"""The JSON Schemas of the two policy file formats, generated from the pydantic models.

``python -m careflow.policies.schema`` rewrites ``policies/schema/``; a test fails when
the committed files differ from what the models generate. The schemas state the structure;
:func:`careflow.policies.model.parse_document` also checks what they cannot (rows use only
declared inputs, conditions and outputs have the declared types, row ids are unique).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from careflow.policies.model import EnterprisePolicy, FacilityOverlay
from careflow.policies.store import default_policy_dir

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
FILES: dict[str, tuple[type[BaseModel], str]] = {
    "enterprise-policy.schema.json": (EnterprisePolicy, "careflow enterprise policy"),
    "facility-overlay.schema.json": (FacilityOverlay, "careflow facility policy overlay"),
}


def _closed(node: Any) -> Any:
    """Maps keyed by name (``patternProperties``) allow no other keys, as pydantic does."""
    if isinstance(node, dict):
        if "patternProperties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for value in node.values():
            _closed(value)
    elif isinstance(node, list):
        for value in node:
            _closed(value)
    return node


def schemas() -> dict[str, dict[str, Any]]:
    out = {}
    for filename, (model, title) in FILES.items():
        schema = _closed(model.model_json_schema())
        schema["title"] = title
        out[filename] = {"$schema": SCHEMA_DIALECT, "$id": filename, **schema}
    return out


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for filename, schema in schemas().items():
        path = directory / filename
        path.write_text(render(schema), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for p in write(default_policy_dir() / "schema"):
        print(p, file=sys.stderr)
