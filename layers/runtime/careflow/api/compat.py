"""The breaking-change check of the ``/v1`` API: what a client written against the last
released document (``docs/openapi-v1-released.json``) would trip on in a new one.

``python -m careflow.api.compat OLD NEW`` prints one line per break and exits 1, or
prints nothing and exits 0. Breaks:

- an operation removed (unless the old document had it ``deprecated`` with an
  ``x-sunset`` that has passed: that is how a route is retired), a success status removed;
- a scope removed from the security scheme, or an operation that needs a scope (or a
  token) it did not need;
- in requests (parameters and bodies): a newly required parameter, field or body; a
  parameter or field no longer accepted (the API refuses unknown ones); an enum value
  removed; a type narrowed (fewer types, null no longer allowed, a new or tighter
  pattern, length, bound or item count);
- in responses: a field removed or no longer always there, an enum value removed, a type
  widened (a new type, or null where there was none).

Additive changes are not breaks: a new operation, a new optional parameter or field, a
new enum value in a request, a new response field, a looser request bound. A new enum
value in a response is not flagged either: clients must take unknown values (docs/api.md).
See docs/decisions.md for why this is written here rather than taken from PyPI.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

Direction = Literal["request", "response"]
Doc = Mapping[str, Any]
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")

# request bounds: (keyword, True when a larger value is tighter)
_BOUNDS = (
    ("maxLength", False),
    ("maximum", False),
    ("exclusiveMaximum", False),
    ("maxItems", False),
    ("minLength", True),
    ("minimum", True),
    ("exclusiveMinimum", True),
    ("minItems", True),
)


class _Schemas:
    """One document's schemas, their ``$ref``s followed."""

    def __init__(self, doc: Doc) -> None:
        self.doc = doc

    def resolve(self, schema: Any) -> dict[str, Any]:
        seen = 0
        while isinstance(schema, Mapping) and "$ref" in schema and seen < 32:
            node: Any = self.doc
            for part in schema["$ref"].removeprefix("#/").split("/"):
                node = node[part]
            schema = {**node, **{k: v for k, v in schema.items() if k != "$ref"}}
            seen += 1
        return dict(schema) if isinstance(schema, Mapping) else {}


def _members(raw: Mapping[str, Any], schemas: _Schemas) -> tuple[bool, dict[str, Any]]:
    """(null allowed, the non-null alternatives keyed by $ref name or type)."""
    variants = raw.get("anyOf") or raw.get("oneOf")
    schema = schemas.resolve(raw)
    if not variants:
        types = schema.get("type")
        if isinstance(types, list) and "null" in types:
            rest = [t for t in types if t != "null"]
            schema = {**schema, "type": rest[0] if len(rest) == 1 else rest}
            return True, {"": schema}
        return schema.get("type") == "null", ({} if schema.get("type") == "null" else {"": schema})
    nullable = False
    members: dict[str, Any] = {}
    for i, variant in enumerate(variants):
        resolved = schemas.resolve(variant)
        if resolved.get("type") == "null":
            nullable = True
            continue
        key = variant["$ref"].rsplit("/", 1)[-1] if "$ref" in variant else str(i)
        members[key] = {
            **{k: v for k, v in schema.items() if k not in ("anyOf", "oneOf")},
            **resolved,
        }
    if len(members) == 1:
        members = {"": next(iter(members.values()))}
    return nullable, members


def _types(schema: Mapping[str, Any]) -> set[str] | None:
    declared = schema.get("type")
    if declared is None:
        return None
    found = {declared} if isinstance(declared, str) else set(declared)
    if "number" in found:
        found.add("integer")
    return found


def _enum(schema: Mapping[str, Any]) -> set[str] | None:
    if "enum" in schema:
        return {json.dumps(v) for v in schema["enum"]}
    if "const" in schema:
        return {json.dumps(schema["const"])}
    return None


class _Compare:
    def __init__(self, old: Doc, new: Doc) -> None:
        self.old, self.new = _Schemas(old), _Schemas(new)
        self.seen: set[tuple[str, str, str, Direction]] = set()

    def schema(self, old: Any, new: Any, where: str, direction: Direction) -> Iterator[str]:
        key = (json.dumps(old, sort_keys=True), json.dumps(new, sort_keys=True), where, direction)
        if key in self.seen or where.count(".") > 24:
            return
        self.seen.add(key)
        old_null, old_members = _members(old, self.old)
        new_null, new_members = _members(new, self.new)
        if direction == "request" and old_null and not new_null:
            yield f"{where}: null no longer accepted"
        if direction == "response" and new_null and not old_null:
            yield f"{where}: may now be null"
        for name, old_m in old_members.items():
            new_m = new_members.get(name)
            if new_m is None:
                if direction == "request":
                    yield f"{where}: {name or 'the value'} no longer accepted"
                continue
            yield from self._one(old_m, new_m, where, direction)
        if direction == "response":
            for name in new_members.keys() - old_members.keys():
                if old_members:
                    yield f"{where}: may now be {name}"

    def _one(
        self, old: Mapping[str, Any], new: Mapping[str, Any], where: str, direction: Direction
    ) -> Iterator[str]:
        old_t, new_t = _types(old), _types(new)
        if direction == "request" and new_t is not None and (old_t is None or not old_t <= new_t):
            yield f"{where}: type narrowed from {_name(old_t)} to {_name(new_t)}"
        if direction == "response" and old_t is not None and (new_t is None or not new_t <= old_t):
            yield f"{where}: type widened from {_name(old_t)} to {_name(new_t)}"
        old_e, new_e = _enum(old), _enum(new)
        if old_e is not None and new_e is not None:
            for value in sorted(old_e - new_e):
                yield f"{where}: enum value {value} removed"
        elif direction == "request" and new_e is not None:
            yield f"{where}: now limited to {sorted(new_e)}"
        if direction == "request":
            yield from _narrowed(old, new, where)
        yield from self._object(old, new, where, direction)
        if "items" in old and "items" in new:
            yield from self.schema(old["items"], new["items"], f"{where}[]", direction)

    def _object(
        self, old: Mapping[str, Any], new: Mapping[str, Any], where: str, direction: Direction
    ) -> Iterator[str]:
        old_p, new_p = old.get("properties") or {}, new.get("properties") or {}
        old_r, new_r = set(old.get("required") or ()), set(new.get("required") or ())
        if direction == "request":
            for name in sorted(new_r - old_r):
                yield f"{where}.{name}: newly required"
            if new.get("additionalProperties") is False:
                for name in sorted(old_p.keys() - new_p.keys()):
                    yield f"{where}.{name}: no longer accepted"
        else:
            for name in sorted(old_p.keys() - new_p.keys()):
                yield f"{where}.{name}: removed"
            for name in sorted((old_r & old_p.keys()) - new_r - (old_p.keys() - new_p.keys())):
                yield f"{where}.{name}: no longer always present"
        for name in sorted(old_p.keys() & new_p.keys()):
            yield from self.schema(old_p[name], new_p[name], f"{where}.{name}", direction)


def _narrowed(old: Mapping[str, Any], new: Mapping[str, Any], where: str) -> Iterator[str]:
    for keyword, larger_is_tighter in _BOUNDS:
        if keyword not in new or isinstance(new[keyword], bool):
            continue
        was, now = old.get(keyword), new[keyword]
        if was is None or (now > was if larger_is_tighter else now < was):
            yield f"{where}: {keyword} tightened from {was} to {now}"
    if "pattern" in new and new["pattern"] != old.get("pattern"):
        yield f"{where}: pattern now {new['pattern']!r} (was {old.get('pattern')!r})"


def _name(types: set[str] | None) -> str:
    if types is None:
        return "any"
    return "|".join(sorted(types - {"integer"} if "number" in types else types))


def _operations(doc: Doc) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): op
        for path, item in (doc.get("paths") or {}).items()
        for method, op in item.items()
        if method in METHODS
    }


def _scopes(doc: Doc) -> set[str]:
    found: set[str] = set()
    for scheme in ((doc.get("components") or {}).get("securitySchemes") or {}).values():
        for flow in (scheme.get("flows") or {}).values():
            found |= set(flow.get("scopes") or {})
    return found


def _needs(op: Mapping[str, Any], doc: Doc) -> set[str] | None:
    """The scopes an operation needs (None: no token); the first requirement is it."""
    security = op.get("security", doc.get("security", []))
    if not security or security == [{}]:
        return None
    return {
        scope for requirement in security[:1] for scopes in requirement.values() for scope in scopes
    }


def _retired(op: Mapping[str, Any], today: date) -> bool:
    sunset = op.get("x-sunset")
    return bool(op.get("deprecated")) and sunset is not None and date.fromisoformat(sunset) <= today


def breaking_changes(old: Doc, new: Doc, *, today: date | None = None) -> list[str]:
    """One line per change in ``new`` that breaks a client of ``old``."""
    today = today or datetime.now(UTC).date()
    compare = _Compare(old, new)
    breaks = [f"scope {scope} removed" for scope in sorted(_scopes(old) - _scopes(new))]
    old_ops, new_ops = _operations(old), _operations(new)
    for key in sorted(old_ops):
        method, path = key
        old_op, new_op = old_ops[key], new_ops.get(key)
        if new_op is None:
            if not _retired(old_op, today):
                breaks.append(f"{method} {path}: operation removed")
            continue
        compare.seen.clear()  # a recursion guard within one operation
        lines = list(_operation(compare, old, new, old_op, new_op))
        breaks += [f"{method} {path}: {line}" for line in lines]
    return breaks


def _operation(
    compare: _Compare, old: Doc, new: Doc, old_op: dict[str, Any], new_op: dict[str, Any]
) -> Iterator[str]:
    was, now = _needs(old_op, old), _needs(new_op, new)
    if now is not None and was is None:
        yield f"now needs a token with {sorted(now)}"
    elif now is not None and was is not None and not now <= was:
        yield f"now needs scope {sorted(now - was)}"
    yield from _parameters(compare, old_op, new_op)
    yield from _body(compare, old_op, new_op)
    old_r, new_r = old_op.get("responses") or {}, new_op.get("responses") or {}
    for status in sorted(old_r):
        if status not in new_r:
            if status.startswith("2"):
                yield f"response {status} removed"
            continue
        old_c = compare.old.resolve(old_r[status]).get("content") or {}
        new_c = compare.new.resolve(new_r[status]).get("content") or {}
        for media in sorted(old_c.keys() & new_c.keys()):
            old_s, new_s = old_c[media].get("schema"), new_c[media].get("schema")
            if old_s is not None and new_s is not None:
                where = f"response {status} body"
                yield from compare.schema(old_s, new_s, where, "response")


def _parameters(compare: _Compare, old_op: dict[str, Any], new_op: dict[str, Any]) -> Iterator[str]:
    def keyed(op: dict[str, Any], schemas: _Schemas) -> dict[tuple[str, str], dict[str, Any]]:
        params = (schemas.resolve(p) for p in op.get("parameters") or ())
        return {(p["in"], p["name"]): p for p in params}

    old_p, new_p = keyed(old_op, compare.old), keyed(new_op, compare.new)
    for (where, name), param in sorted(new_p.items()):
        before = old_p.get((where, name))
        if param.get("required") and (before is None or not before.get("required")):
            yield f"{where} parameter {name}: newly required"
    for (where, name), before in sorted(old_p.items()):
        after = new_p.get((where, name))
        if after is None:
            if where == "query":  # the API refuses unknown query parameters
                yield f"{where} parameter {name}: no longer accepted"
            continue
        if "schema" in before and "schema" in after:
            label = f"{where} parameter {name}"
            yield from compare.schema(before["schema"], after["schema"], label, "request")


def _body(compare: _Compare, old_op: dict[str, Any], new_op: dict[str, Any]) -> Iterator[str]:
    old_b = compare.old.resolve(old_op.get("requestBody") or {})
    new_b = compare.new.resolve(new_op.get("requestBody") or {})
    if new_b.get("required") and not old_b.get("required"):
        yield "request body newly required"
    old_c, new_c = old_b.get("content") or {}, new_b.get("content") or {}
    for media in sorted(old_c):
        if media not in new_c:
            yield f"request body {media} no longer accepted"
            continue
        old_s, new_s = old_c[media].get("schema"), new_c[media].get("schema")
        if old_s is not None and new_s is not None:
            yield from compare.schema(old_s, new_s, "request body", "request")


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        sys.stderr.write("usage: python -m careflow.api.compat OLD.json NEW.json\n")
        return 2
    old, new = (json.loads(Path(name).read_text(encoding="utf-8")) for name in argv)
    breaks = breaking_changes(old, new)
    for line in breaks:
        sys.stdout.write(f"{line}\n")
    return 1 if breaks else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
