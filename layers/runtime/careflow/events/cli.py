"""``careflow parked``: list, show and redrive parked and unrouted events.

Registered by :mod:`careflow.cli` with :func:`register`; reaches a running local cloud
(``careflow up``) on ``--port``, ``CAREFLOW_ENDPOINT`` or 4566. No cloud there: one line, exit
status 1; an unknown or unredrivable event: one line, exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any


def register(sub: Any, parents: Sequence[argparse.ArgumentParser]) -> None:
    """Adds the ``parked`` command group to ``careflow``'s subparsers; ``parents`` gives
    every command the shared options (``--port``)."""
    parents = list(parents)
    parked = sub.add_parser(
        "parked", help="parked and unrouted events: list, show, redrive", parents=parents
    )
    psub = parked.add_subparsers(dest="action", required=True)

    def command(name: str, help: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = psub.add_parser(name, help=help, parents=parents)
        return p

    ls = command("list", "every parked and unrouted event, oldest first")
    ls.add_argument("--json", action="store_true", help="the records as JSON")
    ls.set_defaults(fn=cmd_list)

    show = command("show", "one event's record (identifiers and reason)")
    show.add_argument("event_id", metavar="ID")
    show.set_defaults(fn=cmd_show)

    redrive = command("redrive", "put the event back on the bus after a fix, mark it redriven")
    redrive.add_argument("event_id", metavar="ID")
    redrive.set_defaults(fn=cmd_redrive)


class _Cloud:
    """The ports of a running local cloud, reached on its endpoint."""

    def __init__(self, args: argparse.Namespace) -> None:
        from careflow.localcloud.endpoint import require_ready, resolve

        self.at = resolve(args)  # --port anywhere, else CAREFLOW_ENDPOINT, else 4566
        require_ready(self.at)  # else one line naming the endpoint and `careflow up`

    def client(self, service: str) -> Any:
        return self.at.client(service)

    def store(self) -> Any:
        from careflow.adapters.dynamodb_state import DynamoStateStore
        from careflow.localcloud.cloud import TABLE_NAME

        return DynamoStateStore(self.client("dynamodb"), TABLE_NAME)

    def parking(self) -> Any:
        from careflow.adapters.aws import SqsParkingLot
        from careflow.localcloud.cloud import PARKED_QUEUE

        sqs = self.client("sqs")
        return SqsParkingLot(sqs, sqs.get_queue_url(QueueName=PARKED_QUEUE)["QueueUrl"])

    def publisher(self) -> Any:
        from careflow.adapters.aws import EventBridgePublisher
        from careflow.kit.spec import EVENT_BUS_NAME

        return EventBridgePublisher(self.client("events"), EVENT_BUS_NAME)

    def now(self) -> Any:
        from careflow import clock
        from careflow.localcloud.control import remote_now

        return remote_now(self.at.control_port, self.at.host) or clock.now()


def _fail(message: str) -> int:
    print(f"careflow parked: {message}", file=sys.stderr)
    return 2


def _row(p: Any) -> dict[str, Any]:
    return p.model_dump(mode="json")


def cmd_list(args: argparse.Namespace) -> int:
    from careflow.domain.parked import listing

    records = listing(_Cloud(args).store())
    if args.json:
        print(json.dumps([_row(p) for p in records], indent=2))
        return 0
    if not records:
        print("no parked or unrouted events")
        return 0
    header = ("KIND", 9), ("STATUS", 9), ("PARKED AT (UTC)", 17), ("EVENT", 38), ("DETAIL-TYPE", 24)
    print(" ".join(f"{name:<{width}}" for name, width in header) + " REASON")
    for p in records:
        print(
            f"{p.kind:<9} {p.status:<9} {p.parked_at.strftime('%Y-%m-%d %H:%M'):<17} "
            f"{p.event_id:<38} "
            f"{p.detail_type:<24} {p.reason}"
        )
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from careflow.domain.parked import RedriveError, show

    store = _Cloud(args).store()
    try:
        record = show(store, args.event_id)
    except RedriveError as exc:
        return _fail(str(exc))
    print(json.dumps(_row(record), indent=2))
    return 0


def cmd_redrive(args: argparse.Namespace) -> int:
    from careflow.domain.parked import RedriveError, redrive

    cloud = _Cloud(args)
    try:
        record = redrive(
            args.event_id,
            store=cloud.store(),
            parking=cloud.parking(),
            publisher=cloud.publisher(),
            now=cloud.now(),
        )
    except RedriveError as exc:
        return _fail(str(exc))
    print(f"event {record.event_id} ({record.detail_type}) is back on the bus")
    return 0
