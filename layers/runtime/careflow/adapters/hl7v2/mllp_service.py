"""The MLLP listener as a service: the Fargate task of ``stacks/constructs/mllp_listener.py``
runs ``python -m careflow.adapters.hl7v2.mllp_service``.

Each frame goes through :func:`careflow.adapters.hl7v2.receive` with the state table
(``TABLE_NAME``) and the bus (``EVENT_BUS_NAME``) from :mod:`careflow.wiring`, as the local
cloud's listener does. It binds ``MLLP_HOST``:``MLLP_PORT`` (``0.0.0.0:2575``) and stops on
SIGTERM (ECS stops a task with it). The NLB's health check connects and closes: the server
drops such a connection quietly. Nothing of a message is logged, only its ACK code.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable

from careflow import clock, wiring
from careflow.adapters.hl7v2.mllp import MllpServer
from careflow.adapters.hl7v2.receive import receive

LOG = logging.getLogger("careflow.mllp")


def handler() -> Callable[[bytes], str]:
    """A frame's bytes -> its ACK, through the wired state store and publisher."""

    def handle(raw: bytes) -> str:
        receipt = receive(raw, now=clock.now(), store=wiring.store(), publisher=wiring.publisher())
        return receipt.ack

    return handle


def main(stop: threading.Event | None = None) -> int:
    host = os.environ.get("MLLP_HOST", "0.0.0.0")  # noqa: S104 - the task's own interface
    port = int(os.environ.get("MLLP_PORT", "2575"))
    stopping = stop or threading.Event()
    if stop is None:
        signal.signal(signal.SIGTERM, lambda *_: stopping.set())
        signal.signal(signal.SIGINT, lambda *_: stopping.set())
    server = MllpServer(port, handler(), host=host).start()
    LOG.warning("mllp listening on %s:%d", host, server.port)
    try:
        stopping.wait()
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    raise SystemExit(main())
