"""Closed-loop partner clients for the bench's API line, in a process of their own (as
partners are): ``python -m careflow.localcloud.api_clients PORT PATH CLIENTS REQUESTS``
with the token in ``CAREFLOW_BENCH_TOKEN``. Each client sends its requests one after the
other on one keep-alive connection, with no pause; after one client's run to warm up
and one untimed request on each connection (its opening), all of them start at once.
Prints one JSON document: each request's latency (ms) and the seconds from the first
request sent to the last answer read. Standard library only, so that the
process starts quickly and its clients do not share the server's interpreter.
"""

from __future__ import annotations

import http.client
import json
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor


def run(port: int, path: str, token: str, clients: int, requests: int) -> dict[str, object]:
    headers = {"Authorization": f"Bearer {token}"}
    start = threading.Barrier(clients)

    def get(conn: http.client.HTTPConnection) -> float:
        t = time.perf_counter()
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        resp.read()
        if resp.status != 200:
            raise SystemExit(f"api: GET {path} answered {resp.status}")
        return (time.perf_counter() - t) * 1000

    def client(warm: bool) -> list[float]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        if not warm:
            # the connection open and its server thread started, untimed: the line is
            # about requests on kept-alive connections, not about connecting
            get(conn)
            start.wait()
        times = [get(conn) for _ in range(requests)]
        conn.close()
        return times

    client(True)  # one client's run first: imports and first calls, on the server's side
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        runs = list(pool.map(client, [False] * clients))
    return {
        "latencies_ms": [ms for run in runs for ms in run],
        "seconds": time.perf_counter() - t0,
    }


def main(argv: list[str]) -> int:
    port, path, clients, requests = int(argv[0]), argv[1], int(argv[2]), int(argv[3])
    result = run(port, path, os.environ["CAREFLOW_BENCH_TOKEN"], clients, requests)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
