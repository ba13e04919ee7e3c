"""``careflow policy``: validate, show, diff and publish policy files.

Registered by :mod:`careflow.cli` with :func:`register`. Every failure is one line and
exit status 2 (1 when no ready local cloud answers), never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from careflow.localcloud.endpoint import (
    CloudUnreachable,
    EndpointError,
    port_options,
    require_ready,
    resolve,
)

if TYPE_CHECKING:
    from careflow.policies.model import DecisionTable, Document, Row
    from careflow.policies.snapshot import PolicySnapshot
    from careflow.policies.store import PolicyReader

DEFAULT_TABLE = "careflow-state"  # the local cloud's table (careflow.localcloud.cloud)


class _Refused(Exception):
    """A command cannot go on; the message is its one line."""


def register(sub: Any, parents: Sequence[argparse.ArgumentParser] = ()) -> None:
    """Adds the ``policy`` command group to ``careflow``'s subparsers; ``parents`` gives
    every command the shared options (``--port``: :mod:`careflow.localcloud.endpoint`)."""
    parents = list(parents)
    policy = sub.add_parser(
        "policy", help="validate, show, diff and publish facility policies", parents=parents
    )
    psub = policy.add_subparsers(dest="action", required=True)

    val = psub.add_parser(
        "validate", help="check policy files (all of policies/ by default)", parents=parents
    )
    val.add_argument("paths", nargs="*", metavar="PATH", help="files or directories")
    val.set_defaults(fn=cmd_validate)

    def source_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("name", metavar="NAME")
        p.add_argument("--facility", metavar="F", help="a facility id (default: enterprise)")
        p.add_argument(
            "--cloud",
            action="store_true",
            help="read the published versions in a running local cloud's table",
        )

    show = psub.add_parser(
        "show", help="the effective values and tables, with the version", parents=parents
    )
    source_options(show)
    show.add_argument("--version", metavar="V", help="NAME@V[+FACILITY@V], or an enterprise V")
    show.add_argument("--at", type=_timestamp, help="in effect at this ISO time (default: now)")
    show.add_argument("--json", action="store_true", help="the snapshot as JSON")
    show.set_defaults(fn=cmd_show)

    diff = psub.add_parser(
        "diff",
        help="what changes between two versions, or between a facility and enterprise",
        parents=parents,
    )
    source_options(diff)
    diff.add_argument("--from", dest="from_version", metavar="V")
    diff.add_argument("--to", dest="to_version", metavar="V")
    diff.set_defaults(fn=cmd_diff)

    pub = psub.add_parser(
        "publish", help="publish a new version to a running local cloud", parents=parents
    )
    pub.add_argument("name", metavar="NAME")
    pub.add_argument("--facility", metavar="F", help="the overlay's facility (default: enterprise)")
    pub.add_argument("--file", required=True, type=Path, metavar="PATH")
    pub.add_argument("--table", default=DEFAULT_TABLE)
    pub.add_argument(
        "--aws",
        action="store_true",
        help="publish to the deployed table on AWS (default credentials; needs --table)",
    )
    pub.set_defaults(fn=cmd_publish)


def _timestamp(text: str) -> datetime:
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO time: {text!r}") from None
    if at.tzinfo is None:
        raise argparse.ArgumentTypeError(f"give a time zone: {text!r} (e.g. {text}Z)")
    return at


def _guarded(fn: Any) -> Any:
    """Turns every expected failure into one line on stderr and exit status 2."""

    def run(args: argparse.Namespace) -> int:
        from careflow.policies.errors import InvalidPolicy, PolicyError

        try:
            code: int = fn(args)
            return code
        except InvalidPolicy as exc:
            for problem in exc.problems:
                print(f"error: {problem}", file=sys.stderr)
        except BrokenPipeError:  # the reader (e.g. `| head`) has gone: nothing to say
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - for the interpreter's final flush
            return 0
        except (PolicyError, _Refused) as exc:
            print(f"error: {exc}", file=sys.stderr)
        except (CloudUnreachable, EndpointError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        except Exception as exc:
            if os.environ.get("CAREFLOW_DEBUG"):
                raise
            print(
                f"error: unexpected {type(exc).__name__}: {exc} "
                "(CAREFLOW_DEBUG=1 shows the traceback)",
                file=sys.stderr,
            )
        return 2

    run.__name__ = fn.__name__
    return run


# -- validate ---------------------------------------------------------------------------------
def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _expand(paths: Iterable[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out.extend(f for f in sorted(p.rglob("*.json")) if not f.name.endswith(".schema.json"))
        else:
            out.append(p)
    return out


def _layout(path: Path) -> tuple[Path, str, str | None] | None:
    """(tree root, name, facility) when ``path`` sits where the file store looks."""
    parts = path.resolve().parts
    if len(parts) >= 3 and parts[-2] == "enterprise":
        return Path(*parts[:-2]), path.stem, None
    if len(parts) >= 4 and parts[-3] == "facilities":
        return Path(*parts[:-3]), path.stem, parts[-2]
    return None


def check_file(path: Path) -> list[Any]:
    """Every problem of one file: format, place in the tree, and merge with its relatives."""
    from careflow.policies.errors import InvalidPolicy, PolicyError, Problem
    from careflow.policies.resolve import check_compatible
    from careflow.policies.store import FilePolicyStore, default_policy_dir, read_policy_file

    source = _shown(path)
    if not path.exists():
        return [Problem(source, "", "no such file")]
    try:
        doc = read_policy_file(path, source)
    except InvalidPolicy as exc:
        return list(exc.problems)
    problems = []
    layout = _layout(path)
    root = default_policy_dir()
    if layout is not None:
        root, name, facility = layout
        if doc.name != name:
            problems.append(Problem(source, "name", f"must be {name!r}, the file's name"))
        if facility is None and doc.kind != "enterprise":
            problems.append(Problem(source, "kind", "must be 'enterprise' under enterprise/"))
        if facility is not None and doc.kind != "facility-overlay":
            problems.append(Problem(source, "kind", "must be 'facility-overlay' under facilities/"))
        if facility is not None and doc.facility_id != facility:
            problems.append(
                Problem(source, "facility_id", f"must be {facility!r}, the folder's name")
            )
    if problems:
        return problems
    tree = FilePolicyStore(root)
    try:
        if doc.kind == "facility-overlay":
            check_compatible(tree, doc, source)
        else:
            _check_overlays_of(tree, doc)
    except InvalidPolicy as exc:
        problems.extend(exc.problems)
    except PolicyError as exc:
        problems.append(Problem(source, "", str(exc)))
    return problems


def _check_overlays_of(tree: Any, doc: Document) -> None:
    """An enterprise file must still take every overlay of it in the same tree."""
    from careflow.policies.errors import PolicyError
    from careflow.policies.model import FacilityOverlay
    from careflow.policies.snapshot import build_snapshot

    for facility in tree.overlay_facilities(doc.name):
        try:
            overlay = tree.current(doc.name, facility)
        except PolicyError:
            continue  # reported when that file is validated
        if isinstance(overlay, FacilityOverlay):
            source = _shown(tree.path(doc.name, facility))
            build_snapshot(doc, overlay, facility, source=source)  # type: ignore[arg-type]


@_guarded
def cmd_validate(args: argparse.Namespace) -> int:
    from careflow.policies.store import default_policy_dir

    paths = [Path(p) for p in args.paths] or [default_policy_dir()]
    files = _expand(paths)
    if not files:
        print(f"error: no policy files in {', '.join(map(str, paths))}", file=sys.stderr)
        return 2
    seen: dict[str, str] = {}  # an overlay that no longer fits shows up under both files
    for path in files:
        for problem in check_file(path):
            if str(problem) not in seen:
                seen[str(problem)] = problem.source
                print(problem)
    count, bad = len(seen), len(set(seen.values()))
    if count:
        print(f"{count} problem(s) in {bad} of {len(files)} file(s)", file=sys.stderr)
        return 2
    print(f"{len(files)} policy file(s) valid")
    return 0


# -- reading from the files or a running local cloud ---------------------------------------------
def _local_cloud_client(args: argparse.Namespace) -> Any:
    """A DynamoDB client of the local cloud the command names (--port, $CAREFLOW_ENDPOINT),
    once it answers and is ready; :class:`CloudUnreachable` otherwise."""
    endpoint = resolve(args)
    require_ready(endpoint)
    return endpoint.client("dynamodb")


def _reader(args: argparse.Namespace) -> PolicyReader:
    from careflow.policies.store import FilePolicyStore, LayeredPolicyStore
    from careflow.policies.store_dynamodb import DynamoPolicyStore

    if not args.cloud:
        return FilePolicyStore()
    table = DynamoPolicyStore(_local_cloud_client(args), DEFAULT_TABLE)
    return LayeredPolicyStore(table, FilePolicyStore())


def _aws_errors() -> tuple[type[BaseException], ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError)


def _aws_line(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        err = response.get("Error", {})
        return f"the table refused: {err.get('Code', '?')}: {err.get('Message', '')}".rstrip(": ")
    return f"cannot reach the table: {exc}"


def _snapshot(
    args: argparse.Namespace, store: PolicyReader, version: str | None, at: datetime | None = None
) -> PolicySnapshot:
    from careflow.policies.resolve import load, resolve

    if version is None:
        return resolve(args.name, args.facility, at=at, store=store)
    if "@" not in version:
        version = f"{args.name}@{version}"
    return load(args.name, args.facility, version, store=store)


def _with_store(args: argparse.Namespace, body: Any) -> int:
    try:
        code: int = body(_reader(args))
        return code
    except _aws_errors() as exc:
        raise _Refused(_aws_line(exc)) from None


# -- show ---------------------------------------------------------------------------------------
def human(name: str, value: Any) -> str:
    if isinstance(value, list):
        text = ", ".join(value)
    else:
        text = value if isinstance(value, str) else json.dumps(value)
    if name.endswith("seconds") and isinstance(value, int) and not isinstance(value, bool):
        if value and value % 86400 == 0 and value >= 4 * 86400:
            text += f" ({value // 86400} d)"
        elif value and value % 3600 == 0:
            text += f" ({value // 3600} h)"
        elif value and value % 60 == 0:
            text += f" ({value // 60} min)"
    return text


def _condition(name: str, cond: Any) -> str:
    if isinstance(cond, dict) and "in" in cond:
        return f"{name} in [{', '.join(str(c) for c in cond['in'])}]"
    if isinstance(cond, dict):
        ops = {"gte": ">=", "gt": ">", "lte": "<=", "lt": "<"}
        return " and ".join(f"{name} {ops[k]} {v}" for k, v in cond.items())
    return f"{name} = {cond}" if cond != "*" else f"{name} any"


def _when(row: Row) -> str:
    return " and ".join(_condition(k, c) for k, c in row.when.items()) or "always"


def _then(outputs: dict[str, Any]) -> str:
    return "; ".join(f"{k} = {human(k, v)}" for k, v in outputs.items())


def _origin(snapshot: PolicySnapshot, base: PolicySnapshot | None) -> dict[str, str]:
    """Where the facility's snapshot differs from the enterprise policy, by item."""
    marks: dict[str, str] = {}
    if base is None or base.version == snapshot.version:
        return marks
    facility = snapshot.facility_id
    for name, value in snapshot.values.items():
        if base.values.get(name) != value:
            marks[f"value:{name}"] = f"[{facility}]"
    for tname, table in snapshot.tables.items():
        base_rows = {r.id: r for r in base.tables[tname].rows}
        for row in table.rows:
            if row.id not in base_rows:
                marks[f"row:{tname}:{row.id}"] = f"[{facility}: added]"
            elif base_rows[row.id] != row:
                marks[f"row:{tname}:{row.id}"] = f"[{facility}: replaced]"
        if table.default != base.tables[tname].default:
            marks[f"default:{tname}"] = f"[{facility}]"
    return marks


def render_snapshot(snapshot: PolicySnapshot, base: PolicySnapshot | None = None) -> list[str]:
    marks = _origin(snapshot, base)
    scope = f"facility {snapshot.facility_id}" if snapshot.facility_id else "enterprise"
    lines = [f"{snapshot.version}  ({scope})", f"hash {snapshot.hash}"]
    if snapshot.values:
        lines += ["", "values"]
        width = max(map(len, snapshot.values))
        for name, value in snapshot.values.items():
            mark = marks.get(f"value:{name}", "")
            lines.append(f"  {name:<{width}}  {human(name, value)}  {mark}".rstrip())
    for tname, table in snapshot.tables.items():
        lines += ["", _table_heading(tname, table)]
        width = max([len(r.id) for r in table.rows] + [len("default")])
        for row in table.rows:
            mark = marks.get(f"row:{tname}:{row.id}", "")
            lines.append(
                f"  {row.id:<{width}}  {_when(row)}  ->  {_then(row.then)}  {mark}".rstrip()
            )
        default = (
            _then(table.default) if table.default is not None else "none: no match is an error"
        )
        mark = marks.get(f"default:{tname}", "")
        lines.append(f"  {'default':<{width}}  otherwise  ->  {default}  {mark}".rstrip())
    return lines


def _table_heading(name: str, table: DecisionTable) -> str:
    inputs = ", ".join(table.inputs)
    outputs = ", ".join(table.outputs)
    return f"table {name}  (hit policy {table.hit_policy}; inputs {inputs}; outputs {outputs})"


@_guarded
def cmd_show(args: argparse.Namespace) -> int:
    def body(store: PolicyReader) -> int:
        snapshot = _snapshot(args, store, args.version, args.at)
        if args.json:
            print(json.dumps(snapshot.model_dump(mode="json"), indent=2))
            return 0
        base = None
        if snapshot.facility_id is not None and "+" in snapshot.version:
            enterprise = snapshot.version.split("+", 1)[0]
            base = _snapshot(argparse.Namespace(name=args.name, facility=None), store, enterprise)
        print("\n".join(render_snapshot(snapshot, base)))
        return 0

    return _with_store(args, body)


# -- diff ---------------------------------------------------------------------------------------
def diff_snapshots(old: PolicySnapshot, new: PolicySnapshot) -> list[str]:
    lines: list[str] = []
    for name in sorted(set(old.values) | set(new.values)):
        if name not in new.values:
            lines.append(f"value {name}: removed (was {human(name, old.values[name])})")
        elif name not in old.values:
            lines.append(f"value {name}: added = {human(name, new.values[name])}")
        elif old.values[name] != new.values[name]:
            was, now = human(name, old.values[name]), human(name, new.values[name])
            lines.append(f"value {name}: {was} -> {now}")
    for tname in sorted(set(old.tables) | set(new.tables)):
        if tname not in new.tables:
            lines.append(f"table {tname}: removed")
        elif tname not in old.tables:
            lines.append(f"table {tname}: added")
        else:
            lines.extend(_diff_table(tname, old.tables[tname], new.tables[tname]))
    return lines


def _diff_table(name: str, old: DecisionTable, new: DecisionTable) -> list[str]:
    lines = []
    for field in ("inputs", "outputs", "hit_policy"):
        if getattr(old, field) != getattr(new, field):
            lines.append(f"table {name} {field}: {getattr(old, field)} -> {getattr(new, field)}")
    before = {r.id: r for r in old.rows}
    after = {r.id: r for r in new.rows}
    for i, row in enumerate(new.rows):
        if row.id not in before:
            where = "first" if i == 0 else f"after row {new.rows[i - 1].id}"
            lines.append(
                f"table {name} row {row.id}: added ({where}): {_when(row)} -> {_then(row.then)}"
            )
            continue
        was = before[row.id]
        if was.when != row.when:
            lines.append(f"table {name} row {row.id}: when {_when(was)} -> {_when(row)}")
        if was.then != row.then:
            lines.append(f"table {name} row {row.id}: then {_then(was.then)} -> {_then(row.then)}")
    lines += [f"table {name} row {rid}: removed" for rid in before if rid not in after]
    kept_old = [r.id for r in old.rows if r.id in after]
    kept_new = [r.id for r in new.rows if r.id in before]
    if kept_old != kept_new:
        lines.append(f"table {name} row order: {', '.join(kept_old)} -> {', '.join(kept_new)}")
    if old.default != new.default:
        gone = _then(old.default) if old.default is not None else "none"
        come = _then(new.default) if new.default is not None else "none"
        lines.append(f"table {name} default: {gone} -> {come}")
    return lines


@_guarded
def cmd_diff(args: argparse.Namespace) -> int:
    if args.from_version is None and args.to_version is None and args.facility is None:
        raise _Refused("nothing to compare: give --facility F, or --from V (and --to V)")

    def body(store: PolicyReader) -> int:
        if args.from_version is None and args.to_version is None:
            new = _snapshot(args, store, None)
            enterprise = argparse.Namespace(name=args.name, facility=None)
            old = _snapshot(enterprise, store, new.version.split("+", 1)[0])
        else:
            old = _snapshot(args, store, args.from_version)
            new = _snapshot(args, store, args.to_version)
        print(f"--- {old.version}")
        print(f"+++ {new.version}")
        print("\n".join(diff_snapshots(old, new) or ["no differences"]))
        return 0

    return _with_store(args, body)


# -- publish ------------------------------------------------------------------------------------
@_guarded
def cmd_publish(args: argparse.Namespace) -> int:
    from careflow.policies.errors import InvalidPolicy
    from careflow.policies.resolve import publish, resolve
    from careflow.policies.store import FilePolicyStore, LayeredPolicyStore, read_policy_file
    from careflow.policies.store_dynamodb import DynamoPolicyStore

    source = _shown(args.file)
    doc = read_policy_file(args.file, source)
    if doc.name != args.name:
        raise _Refused(f"{source} holds policy {doc.name!r}, not {args.name!r}")
    if doc.facility_id != args.facility:
        holds = f"the {doc.facility_id} overlay" if doc.facility_id else "the enterprise policy"
        wanted = f"--facility {args.facility}" if args.facility else "no --facility"
        raise _Refused(f"{source} holds {holds}, and the command says {wanted}")
    if args.aws:
        if args.table == DEFAULT_TABLE:
            raise _Refused("--aws needs --table: the deployed state table's name")
        import boto3

        client = boto3.client("dynamodb")
    else:
        client = _local_cloud_client(args)
    store = LayeredPolicyStore(DynamoPolicyStore(client, args.table), FilePolicyStore())
    try:
        outcome = publish(store, doc, source)
        now = resolve(doc.name, doc.facility_id, store=store).version
    except _aws_errors() as exc:
        raise _Refused(_aws_line(exc)) from None
    except InvalidPolicy:
        raise
    scope = f"{doc.facility_id} overlay" if doc.facility_id else "enterprise policy"
    if outcome == "unchanged":
        print(f"unchanged: {doc.name} {scope} {doc.version} is already published as it is")
    else:
        print(f"published {doc.name} {scope} {doc.version} to {args.table}")
    where = f"at {doc.facility_id}" if doc.facility_id else "without an overlay"
    print(f"new instances {where} start with {now}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m careflow.policies.cli`` (the same as ``careflow policy``)."""
    parser = argparse.ArgumentParser(prog="careflow")
    register(parser.add_subparsers(dest="command", required=True), parents=[port_options()])
    args = parser.parse_args(["policy", *(argv if argv is not None else sys.argv[1:])])
    code: int = args.fn(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
