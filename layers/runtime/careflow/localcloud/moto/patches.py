"""The patch registry: every patch of every concern module, checked, installed and
uninstalled together.

:func:`install` first checks each patch's shape (:mod:`.shapes`) against the installed
moto and raises :class:`MotoShapeError` listing every one that no longer holds, before
anything is patched; :func:`uninstall` puts moto back exactly. :func:`check_shapes`
answers per patch without patching (``python -m careflow.localcloud.moto.check``).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from careflow import clock as process_clock
from careflow.clock import VirtualClock

from . import children, clients, events, fidelity, inprocess, lambda_, speed
from . import clock as virtual_time
from .shapes import Patch, problem_of, resolve
from .state import (
    MOTO_VERSION,
    ExecutionEndedFn,
    Installed,
    InvokeFn,
    MotoShapeError,
    StartExecutionFn,
    current,
    set_current,
)

LOG = logging.getLogger(__name__)

# Each concern's patches, in install order.
CONCERNS: tuple[ModuleType, ...] = (
    clients,
    lambda_,
    events,
    virtual_time,
    fidelity,
    children,
    speed,
    inprocess,
)

_INHERITED = object()  # marks a patched attribute the owner did not define itself
_install_lock = threading.RLock()
_baseline: list[tuple[Any, str, Any]] = []


def all_patches() -> list[Patch]:
    """Every patch (and every attribute only checked), each with its concern's name."""
    return [
        dataclasses.replace(patch, concern=module.__name__.rpartition(".")[2])
        for module in CONCERNS
        for patch in module.patches()
    ]


@dataclass(frozen=True)
class CheckResult:
    patch: Patch
    problem: str | None  # None: the patch applies

    @property
    def ok(self) -> bool:
        return self.problem is None


def check_shapes() -> list[CheckResult]:
    """Each patch's shape check against the installed moto, without patching. moto as
    released: refused while the patches are installed (they would be what is checked)."""
    if current() is not None or _baseline:
        raise RuntimeError("moto is patched in this process: check its shapes in a fresh one")
    clients.import_importers()
    return [CheckResult(patch, problem_of(patch)) for patch in all_patches()]


def _raise_on_problems(results: list[CheckResult]) -> None:
    import moto

    problems = [f"{r.patch.target}: {r.problem}" for r in results if not r.ok]
    if problems:
        raise MotoShapeError(
            f"careflow.localcloud.moto was written for moto {MOTO_VERSION}; installed moto "
            f"{moto.__version__} differs where it patches:\n  " + "\n  ".join(problems)
        )
    if moto.__version__ != MOTO_VERSION:
        LOG.warning(
            "moto %s (patches written for %s): shapes match, patching anyway",
            moto.__version__,
            MOTO_VERSION,
        )


def _apply(owner: Any, attribute: str, replacement: Callable[[Any], Any]) -> tuple[Any, str, Any]:
    own = attribute in vars(owner)
    original = vars(owner)[attribute] if own else getattr(owner, attribute)
    setattr(owner, attribute, replacement(original))
    return owner, attribute, original if own else _INHERITED


def _restore(originals: list[tuple[Any, str, Any]]) -> None:
    for owner, attribute, original in reversed(originals):
        if original is _INHERITED:
            delattr(owner, attribute)
        else:
            setattr(owner, attribute, original)


def install(
    *,
    clock: VirtualClock,
    invoke: InvokeFn,
    start_execution: StartExecutionFn | None = None,
    execution_ended: ExecutionEndedFn | None = None,
) -> None:
    """Patch moto in this process. Idempotent: a second call replaces the clock,
    ``invoke``, ``start_execution`` and ``execution_ended`` and keeps the patches.

    ``execution_ended`` hears every execution's end (in the async pool, off the
    execution's thread), as Step Functions announces it on the default bus.

    Also installs ``clock`` as the process clock (:func:`careflow.clock.set_clock`),
    so in-process handlers see the same time as the interpreter.
    """
    with _install_lock:
        installed = current()
        if installed is not None:
            installed.clock = clock
            installed.invoke = invoke
            installed.start_execution = start_execution
            installed.execution_ended = execution_ended
            process_clock.set_clock(clock)
            return
        results = check_shapes()
        _raise_on_problems(results)
        state = Installed(
            clock=clock,
            invoke=invoke,
            start_execution=start_execution,
            execution_ended=execution_ended,
            previous_process_clock=process_clock.get_clock(),
            boto_client_for=clients.moto_boto_client_for(),
        )
        for result in results:
            patch = result.patch
            if patch.replacement is None:
                continue  # code careflow relies on as it is (see the DynamoDB lane)
            state.originals.append(_apply(resolve(patch.owner), patch.attribute, patch.replacement))
        clients.rebind_late_importers(state)
        set_current(state)
        process_clock.set_clock(clock)
        LOG.info("moto patches installed (%d)", len(state.originals))


def uninstall() -> None:
    """Undo :func:`install`: moto's original functions and attributes come back."""
    with _install_lock:
        state = current()
        if state is None:
            return
        _restore(state.originals)
        clients.unbind_late_importers(state)
        set_current(None)
        process_clock.set_clock(state.previous_process_clock)
        state.pool.shutdown(wait=False)
        clients.close_clients(state)
        LOG.info("moto patches uninstalled")


def install_baseline(invoke: InvokeFn) -> None:
    """Stock moto plus the least it needs to run careflow's ASL, the benchmark's baseline:
    ``lambda:Invoke`` runs ``invoke`` (moto's Lambda backend would echo its input), and the
    child-execution fixes (``states:startExecution.sync:2``). Checked like the rest."""
    with _install_lock:
        if _baseline:
            return
        (patch,) = lambda_.patches()
        problem = problem_of(patch)
        if problem:
            raise MotoShapeError(f"{patch.target}: {problem}")
        replacement = lambda_.stock_invoke_replacement(invoke)
        _baseline.append(_apply(resolve(patch.owner), patch.attribute, lambda _o: replacement))
        # Without these, stock moto cannot run a child workflow at all (a parent that starts
        # one fails with a KeyError): the baseline gets them too, so it runs the same ASL.
        for child in children.patches():
            if child.replacement is None:
                continue
            problem = problem_of(child)
            if problem:
                raise MotoShapeError(f"{child.target}: {problem}")
            _baseline.append(_apply(resolve(child.owner), child.attribute, child.replacement))


def uninstall_baseline() -> None:
    with _install_lock:
        _restore(_baseline)
        _baseline.clear()
