"""``careflow models``: list, train, evaluate, and check drift of the triage models."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from careflow.ml import drift_check, registry
from careflow.ml.history import DEFAULT_SEED, BadHistory, from_store, generated, read_jsonl
from careflow.textfile import Unreadable


class ModelsRefused(Exception):
    """A one-line refusal (exit 2)."""


def register(sub: Any, parents: Sequence[argparse.ArgumentParser] = ()) -> None:
    models = sub.add_parser(
        "models", help="list, train and evaluate the triage models", parents=list(parents)
    )
    msub = models.add_subparsers(dest="action", required=True)

    ls = msub.add_parser(
        "list", help="every model: version, training date, metrics, status", parents=list(parents)
    )
    ls.add_argument("--json", action="store_true")
    ls.add_argument("--facility", metavar="F", help="status as the policy says for this facility")
    ls.set_defaults(fn=_guarded(cmd_list))

    def history_options(p: argparse.ArgumentParser) -> None:
        src = p.add_mutually_exclusive_group()
        src.add_argument(
            "--history", type=Path, metavar="FILE", help="an export (JSON lines) of the state store"
        )
        src.add_argument(
            "--cloud", action="store_true", help="read a running local cloud's state store"
        )
        p.add_argument(
            "--seed", type=int, default=DEFAULT_SEED, help="the generator's and the split's seed"
        )
        p.add_argument(
            "--days",
            type=int,
            default=365,
            help="with --cloud: instances updated in the last N days",
        )
        p.add_argument(
            "--model", action="append", metavar="ID", help="only this model (repeatable)"
        )

    tr = msub.add_parser(
        "train",
        help="train from history (default: the generated starting history)",
        parents=list(parents),
    )
    history_options(tr)
    tr.add_argument("--out", type=Path, default=registry.ARTIFACTS, help="where the artifacts go")
    tr.set_defaults(fn=_guarded(cmd_train))

    ev = msub.add_parser(
        "eval",
        help="held-out metrics beside the baseline, one line per model",
        parents=list(parents),
    )
    ev.add_argument("--model", action="append", metavar="ID")
    ev.set_defaults(fn=_guarded(cmd_eval))

    dr = msub.add_parser(
        "drift",
        help="population stability of recent inputs against training",
        parents=list(parents),
    )
    history_options(dr)
    dr.add_argument("--json", action="store_true")
    dr.set_defaults(fn=_guarded(cmd_drift))

    gen = msub.add_parser(
        "generate", help="write the generated starting history (JSON lines)", parents=list(parents)
    )
    gen.add_argument("--seed", type=int, default=DEFAULT_SEED)
    gen.add_argument("--out", type=Path, required=True)
    gen.set_defaults(fn=_guarded(cmd_generate))


def _guarded(fn: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            code: int = fn(args)
            return code
        except (ModelsRefused, BadHistory, Unreadable, registry.UnknownModel) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except OSError as exc:
            print(
                f"error: {exc.strerror or exc}: {getattr(exc, 'filename', '') or ''}".rstrip(": "),
                file=sys.stderr,
            )
            return 2

    run.__name__ = fn.__name__
    return run


def _selected(args: argparse.Namespace) -> list[registry.ModelDef]:
    if not args.model:
        return list(registry.definitions().values())
    return [registry.definition(m) for m in args.model]


def _histories(
    args: argparse.Namespace, defs: Sequence[registry.ModelDef]
) -> Iterator[tuple[registry.ModelDef, list[Any], str]]:
    """Each model with the history it learns from: an export or the state store (read once,
    shared: a hospital's records serve every model), else its own generated history."""
    if args.history:
        shared = read_jsonl(args.history)
        source = f"export {args.history.name}"
    elif args.cloud:
        from careflow.adapters.dynamodb_state import DynamoStateStore
        from careflow.kit import registry as workflows
        from careflow.localcloud.endpoint import require_ready, resolve

        endpoint = resolve(args)
        require_ready(endpoint)
        store = DynamoStateStore(endpoint.client("dynamodb"), "careflow-state")
        since = datetime.now(UTC) - timedelta(days=args.days)
        ids = [wf.id for wf in workflows.workflows()]
        shared, source = from_store(store, ids, since), "the local cloud's state store"
    else:
        for defn in defs:
            yield defn, generated(args.seed, [defn]), f"generated history (seed {args.seed})"
        return
    for defn in defs:
        yield defn, shared, source


def status(model_id: str, facility: str | None = None) -> str:
    from careflow.ml.governance import setting

    return setting(model_id, facility).mode


def listing(facility: str | None = None) -> list[dict[str, Any]]:
    rows = []
    for defn in registry.definitions().values():
        art = registry.artifact(defn.id) or {}
        rows.append(
            {
                "id": defn.id,
                "title": defn.title,
                "workflow": defn.workflow,
                "owner": defn.owner,
                "version": art.get("version"),
                "trained_at": art.get("trained_at"),
                "training": art.get("training"),
                "metric": defn.metric,
                "margin": defn.margin,
                "metrics": art.get("metrics"),
                "baseline": art.get("baseline"),
                "status": status(defn.id, facility) if art else "off",
                "card": f"docs/models/{defn.id}.md",
            }
        )
    return rows


def cmd_list(args: argparse.Namespace) -> int:
    rows = listing(args.facility)
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    for r in rows:
        m = r["metrics"] or {}
        print(
            f"{r['id']:<20} {r['status']:<6} v{r['version'] or '-':<12} "
            f"trained {(r['trained_at'] or 'never')[:10]}  {r['metric']}={m.get(r['metric'], '-')}"
            f" (baseline {(r['baseline'] or {}).get(r['metric'], '-')})"
        )
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from careflow.ml.train import train, write

    defs = _selected(args)
    args.out.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC).replace(microsecond=0)
    for defn, history, source in _histories(args, defs):
        try:
            art = train(defn, history, seed=args.seed, source=source, now=now)
        except ValueError as exc:
            raise ModelsRefused(str(exc)) from None
        write(art, args.out / f"{defn.id}.json")
        m = art["metrics"]
        print(
            f"trained {defn.id} v{art['version']} on {art['training']['examples']} examples "
            f"from {source}: {defn.metric}={m[defn.metric]} "
            f"(baseline {art['baseline'][defn.metric]})"
        )
    registry.artifact.cache_clear()
    return 0


def eval_lines(defn: registry.ModelDef, art: dict[str, Any]) -> list[str]:
    m, b = art["metrics"], art["baseline"]
    lines = [
        f"eval model={defn.id} metric={defn.metric} value={m[defn.metric]:.4f} "
        f"baseline={b[defn.metric]:.4f} margin={defn.margin} "
        f"ece={m['ece']:.4f} brier={m['brier']:.4f} baseline_ece={b['ece']:.4f} "
        f"n={art['training']['held_out']} version={art['version']}"
    ]
    for name, extra in art.get("external", {}).items():
        lines.append(
            f"eval model={defn.id} metric={extra['metric']} value={extra['value']:.4f} "
            f"baseline={extra['baseline']:.4f} set={name} n={extra['n']}"
        )
    return lines


def cmd_eval(args: argparse.Namespace) -> int:
    failed = []
    for defn in _selected(args):
        art = registry.artifact(defn.id)
        if art is None:
            raise ModelsRefused(
                f"{defn.id} has no artifact: careflow models train --model {defn.id}"
            )
        for line in eval_lines(defn, art):
            print(line)
        if art["metrics"][defn.metric] < art["baseline"][defn.metric] + defn.margin:
            failed.append(defn.id)
    if failed:
        print(f"error: below baseline + margin: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def cmd_drift(args: argparse.Namespace) -> int:
    from careflow.ml.train import examples_of

    defs = _selected(args)
    _, line, least = drift_check.policy_values()
    out: list[drift_check.DriftResult] = []
    sources = set()
    for defn, history, source in _histories(args, defs):
        sources.add(source)
        art = registry.artifact(defn.id)
        if art is None:
            continue
        rows = [f for f, _ in examples_of(defn, history)]
        out.append(drift_check.judge(defn.id, art, rows, line=line, min_inputs=least))
    if args.json:
        models = [
            {
                "model": r.model_id,
                "inputs": r.inputs,
                "enough": r.enough,
                "psi": r.psi,
                "max_psi": r.max_psi,
                "feature": r.feature,
                "alarm": r.alarm,
                "alarm_line": r.line,
                "min_inputs": r.min_inputs,
            }
            for r in out
        ]
        print(json.dumps({"source": ", ".join(sorted(sources)), "models": models}, indent=1))
    else:
        for r in out:
            flag = (
                "ALARM" if r.alarm else "ok" if r.enough else f"too few inputs (< {r.min_inputs})"
            )
            print(
                f"drift model={r.model_id} psi={r.max_psi:.4f} feature={r.feature} "
                f"inputs={r.inputs} line={r.line} {flag}"
            )
    return 1 if any(r.alarm for r in out) else 0


def cmd_generate(args: argparse.Namespace) -> int:
    from careflow.ml.history import write_jsonl

    records = generated(args.seed)
    write_jsonl(records, args.out)
    print(f"wrote {len(records)} generated instance record(s) (seed {args.seed}) to {args.out}")
    return 0
