"""Every change careflow makes to moto, by concern; nothing outside this package patches
moto. moto 5.2.5 runs the real ASL but lacks a few things for a local cloud:

- :mod:`.clients`: cached AWS clients for the interpreter, answered in-process;
- :mod:`.lambda_`: Lambda functions run in this process, synchronously or async;
- :mod:`.events`: EventBridge rules deliver to Step Functions and Lambda targets, DLQ;
- :mod:`.clock`: every timer on the virtual clock;
- :mod:`.fidelity`: behaviour moto gets wrong, as AWS has it;
- :mod:`.children`: child workflow executions (``states:startExecution``, ``.sync``,
  ``.sync:2``);
- :mod:`.speed`: the same answers in less time;
- :mod:`.inprocess`: AWS calls to the local endpoint answered in this process, the
  DynamoDB lane;
- :mod:`.patches`: the registry, :func:`install` / :func:`uninstall`;
- :mod:`.shapes`: what a patch is and how its shape is checked;
- :mod:`.check`: the shape checks as a table (``make moto-check``);
- :mod:`.state`: what the patches read while installed.

Each patch names the moto attribute it replaces and is checked at install
(:class:`MotoShapeError` if moto's shape changed).
"""

from __future__ import annotations

from .events import target_input
from .inprocess import attach_in_process
from .patches import (
    check_shapes,
    install,
    install_baseline,
    uninstall,
    uninstall_baseline,
)
from .speed import release_finished_threads
from .state import (
    ASYNC_RETRY_DELAYS_SECONDS,
    MOTO_VERSION,
    InvokeFn,
    MotoShapeError,
    StartExecutionFn,
    clients_built,
    is_installed,
)

__all__ = [
    "ASYNC_RETRY_DELAYS_SECONDS",
    "MOTO_VERSION",
    "InvokeFn",
    "MotoShapeError",
    "StartExecutionFn",
    "attach_in_process",
    "check_shapes",
    "clients_built",
    "install",
    "install_baseline",
    "is_installed",
    "release_finished_threads",
    "target_input",
    "uninstall",
    "uninstall_baseline",
]
