"""Speed: the same answers from moto in less time. Each patch keeps what moto computes
and drops work that does not change it (``docs/local-cloud.md`` has the measurements).

- moto's response serializer (``moto/core/serialize.py``): the keys
  ``AttributePicker.__call__`` tries are worked out once per (class, member, shape), and
  ``ResponseSerializer._serialize_structure_member`` reads a dict's members with them;
  request ids (``moto/core/responses.py`` ``gen_amzn_requestid_long``) drawn in one call;
- the ASL parsed once per definition (``AmazonStateLanguageParser.parse``; the program
  shared unless it has a Map), JSONPath compiled once (``parse`` of
  ``asl/utils/json_path.py``, ``asl/component/common/path/result_path.py`` and
  ``jsonpath_ng.ext``), ``$.a.b`` paths read and written on plain dicts;
- states without a timeout of their own evaluated in the caller's thread
  (``ExecutionState._evaluate_with_timeout`` and ``execute_state.Thread``), programs
  without ``TimeoutSeconds`` too (``Program.eval``), executions and Parallel branches on
  reused worker threads (``ExecutionWorker.start``, ``BranchWorker.start``);
- ``method_names_from_class`` cached, ``BackendDict.__getitem__`` without moto's global
  lock once an account's backend exists;
- a DynamoDB Query on a table's own key reads its partition, not the whole table: moto's
  ``Table.query`` filters ``Table.all_items()``, which sorts every item of the table on
  every call (``DynamoType`` comparisons: a third of the benchmark's CPU once a few
  thousand items are stored); a Query on an index sorts only the items with its hash
  key (each item still looked at once);
- state entered/exited history details written without a copy of the state; the
  interpreter's deep copies through pickle (module attribute ``copy`` of ten modules).
"""

from __future__ import annotations

import base64
import contextvars
import copy as _copy_module
import functools
import json
import logging
import pickle
import queue
import threading
from collections.abc import Callable
from typing import Any

from .shapes import Patch, all_of, is_, params, source_has
from .state import ASL, SFN, ModuleShim

LOG = logging.getLogger(__name__)


# (picker class, its alias providers, object type, key, shape, shape's parent) ->
# (shape, parent, the keys to try): see _make_cached_picker_call.
_PICKER_KEYS: dict[tuple[Any, ...], tuple[Any, Any, tuple[str, ...]]] = {}
_PICKER_KEYS_MAX = 65536


def _providers_key(picker: Any, default: Any) -> Any:
    """The picker's alias providers as part of a cache key: moto's default list
    (``default``, that every picker moto builds has) by a marker, any other list by its
    contents."""
    providers = picker.alias_providers
    return "default" if providers is default else tuple(providers)


def _make_cached_picker_call(original: Any) -> Any:
    """Replaces ``moto/core/serialize.py`` ``AttributePicker.__call__``, which asks every
    alias provider for every member of every structure it serializes, on every response
    (a DynamoDB item's AttributeValue has ten members: most of a GetItem's cost). The keys
    to try depend only on the picker's providers, the object's class (its ``Meta``
    aliases and class name), the member and its shape: they are worked out once and the
    object is searched in the same order as before. An object with a ``Meta`` of its own
    takes moto's path.
    """
    from moto.core.serialize import DEFAULT_ALIAS_PROVIDERS, MISSING
    from moto.core.utils import get_value

    def __call__(self: Any, context: Any) -> Any:
        obj = context.obj
        if "Meta" in getattr(obj, "__dict__", ()):
            return original(self, context)
        shape = context.shape
        parent = getattr(shape, "parent", None)
        cache_key = (
            type(self),
            _providers_key(self, DEFAULT_ALIAS_PROVIDERS),
            type(obj),
            context.key,
            id(shape),
            id(parent),
        )
        hit = _PICKER_KEYS.get(cache_key)
        if hit is None or hit[0] is not shape or hit[1] is not parent:
            keys = tuple(self.get_possible_keys(context))
            if len(_PICKER_KEYS) >= _PICKER_KEYS_MAX:
                _PICKER_KEYS.clear()
            _PICKER_KEYS[cache_key] = (shape, parent, keys)
        else:
            keys = hit[2]
        for possible_key in keys:
            value = get_value(obj, possible_key, MISSING)
            if value is not MISSING:
                break
        else:
            value = None
        if self.response_transformers:
            key_path = f"{context.key_path}.{context.key}"
            for transform_path, transform in self.response_transformers.items():
                if key_path.endswith(transform_path):
                    return transform(value)
        return value

    return __call__


def _make_skip_absent_members(original: Any) -> Any:
    """Wraps ``moto/core/serialize.py`` ``ResponseSerializer._serialize_structure_member``
    for the members of a plain ``dict`` whose keys to try are known (see
    :func:`_make_cached_picker_call`): the value is the first of those keys the dict holds,
    as the picker would find it, without building the picker's context; a member the dict
    does not hold serializes to nothing. Anything else takes moto's path."""
    from moto.core.serialize import DEFAULT_ALIAS_PROVIDERS, AttributePicker

    def member(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
        picker = self._value_picker
        if (
            type(value) is dict
            and isinstance(picker, AttributePicker)
            and not picker.response_transformers
        ):
            parent = getattr(shape, "parent", None)
            hit = _PICKER_KEYS.get(
                (
                    type(picker),
                    _providers_key(picker, DEFAULT_ALIAS_PROVIDERS),
                    dict,
                    key,
                    id(shape),
                    id(parent),
                )
            )
            if hit is not None and hit[0] is shape and hit[1] is parent:
                keys = hit[2]
                if not any("." in k for k in keys):  # a dotted key is a path: moto's way
                    for k in keys:
                        if k in value:
                            member_value = value[k]
                            if member_value is not None:
                                self._serialize(serialized, member_value, shape, key)
                            return
                    return
        original(self, serialized, value, shape, key)

    return member


def _request_id(headerdict: dict[str, Any] | None = None) -> str:
    """moto's ``x-amzn-requestid``: 52 upper-case letters and digits (as DynamoDB's look)
    from moto's seedable random, drawn in one call rather than 52."""
    from moto.moto_api._internal import mock_random

    request_id = base64.b32encode(mock_random.randbytes(35)).decode()[:52]
    if isinstance(headerdict, dict):
        headerdict["x-amzn-requestid"] = request_id
    return request_id


_PARSED: dict[str, tuple[Any, Any]] = {}  # definition -> (shared program or None, tree)
_PARSED_MAX = 256


def _shares_safely(definition: str) -> bool:
    """Whether the evaluation components built for ``definition`` can serve several
    executions at once. They keep per-execution state in the Environment (retry counts
    live in ``env.heap``, Parallel builds its worker pool per evaluation), except Map
    states, whose components hold run state: a definition with a Map is rebuilt per run.
    """
    try:
        document = json.loads(definition)
    except ValueError:
        return False

    def states(d: Any) -> Any:
        for state in (d.get("States") or {}).values():
            yield state
            for branch in state.get("Branches", []):
                yield from states(branch)
            for key in ("Iterator", "ItemProcessor"):
                if isinstance(state.get(key), dict):
                    yield from states(state[key])

    return isinstance(document, dict) and all(s.get("Type") != "Map" for s in states(document))


def _make_cached_asl_parse(original: Any) -> Any:
    """Replaces ``AmazonStateLanguageParser.parse``, which runs the ANTLR parser and the
    Preprocessor on the whole definition for every execution (most of an execution's
    CPU). The evaluation program is kept per definition when its components can be
    shared (see :func:`_shares_safely`); otherwise the parse tree, which is immutable, is
    kept and the Preprocessor builds fresh components for each execution.
    """
    from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor

    parse = original.__func__ if isinstance(original, staticmethod) else original

    def cached_parse(definition: str) -> tuple[Any, Any]:
        cached = _PARSED.get(definition)
        if cached is None:
            program, tree = parse(definition)  # syntax errors raise, and are not cached
            if len(_PARSED) >= _PARSED_MAX:
                _PARSED.clear()
            _PARSED[definition] = (program if _shares_safely(definition) else None, tree)
            return program, tree
        program, tree = cached
        return (program if program is not None else Preprocessor().visit(tree)), tree

    return staticmethod(cached_parse)


_IMMUTABLE = frozenset({str, int, float, bool, type(None)})


def _pickle_deepcopy(value: Any, memo: Any = None) -> Any:
    """``copy.deepcopy`` through pickle: the same copy for the JSON values, dates and
    enums the interpreter copies, made in C instead of one Python call per object. What
    pickle cannot take goes to ``copy.deepcopy``.
    """
    if type(value) in _IMMUTABLE:
        return value
    try:
        return pickle.loads(pickle.dumps(value, -1))  # noqa: S301 - our own bytes, in memory
    except Exception:  # unpicklable (a lock, a lambda): the slow, general copy
        return _copy_module.deepcopy(value, memo)


_COPY_VIA_PICKLE = ModuleShim(_copy_module, deepcopy=_pickle_deepcopy)


_INLINE = threading.local()


class _MaybeInlineThread(threading.Thread):
    """The ``Thread`` of ``execute_state``: when the state being evaluated has no timeout
    or heartbeat of its own (see :func:`_make_evaluate_maybe_inline`), ``start`` runs the
    target in the calling thread. Nothing then waits on a clock for it: the wait that
    follows finds the work already done.
    """

    def start(self) -> None:
        if getattr(_INLINE, "on", False):
            self.run()
        else:
            super().start()


def _make_evaluate_maybe_inline(original: Any) -> Any:
    """Wraps ``ExecutionState._evaluate_with_timeout``. moto runs every Task and Parallel
    state in a new thread so it can give up at ``TimeoutSeconds``; most states have no
    timeout of their own (moto's default is 99999999 s), and a new thread for each costs
    more than many states' work. Those run inline; states with ``TimeoutSeconds``,
    ``TimeoutSecondsPath`` or a heartbeat (task tokens, SLAs) keep moto's thread, on the
    clock. (A Lambda task with a timeout of its own would then not be cut short at it:
    the local cloud does not enforce Lambda timeouts anyway.)
    """
    from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import (
        TimeoutSeconds,
    )

    def evaluate(self: Any, env: Any) -> None:
        timeout = self.timeout
        inline = (
            self.heartbeat is None
            and isinstance(timeout, TimeoutSeconds)
            and timeout.is_default_value()
        )
        previous = getattr(_INLINE, "on", False)
        _INLINE.on = inline
        try:
            original(self, env)
        finally:
            _INLINE.on = previous

    return evaluate


def release_finished_threads() -> int:
    """moto keeps every thread it starts (one per Task state) in ``TMP_THREADS``, a list
    it never reads: a long-running local cloud would hold them all. Drops the finished
    ones; returns how many are left.
    """
    from moto.stepfunctions.parser.utils import TMP_THREADS

    TMP_THREADS[:] = [t for t in list(TMP_THREADS) if t.is_alive()]
    return len(TMP_THREADS)


def _make_program_eval(original: Any) -> Any:
    """Wraps ``Program.eval``, which evaluates every program (the state machine, and each
    Parallel branch) in a thread of its own only to ``join`` it with the state machine's
    ``TimeoutSeconds``. Without a timeout that join waits for the end anyway: the program
    runs in the calling thread (the execution's worker, or the branch's worker), which
    saves one thread per execution and per branch. With a timeout, moto's code runs (on
    the clock). An exception escaping the program is logged, as the thread would have.
    """
    from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent

    def eval_program(self: Any, env: Any) -> None:
        if self.timeout_seconds is not None:
            original(self, env)
            return
        env.next_state_name = self.start_at.start_at_name
        try:
            EvalComponent.eval(self, env)
        except Exception:  # moto's thread would end with it, and Program.eval return
            LOG.exception("step functions program ended with an exception")

    return eval_program


class _ReusedThreads:
    """Threads for moto's per-execution and per-branch workers, kept for reuse. A task
    gets an idle thread at once, or a new one when none is idle: as many run at a time as
    with a thread each (a branch waiting for a task token never holds up another). Each
    task runs in a fresh ``contextvars`` context, as in a new thread. A thread idle for
    ``idle_seconds`` ends.
    """

    def __init__(self, name: str, idle_seconds: float = 30.0) -> None:
        self._name = name
        self._idle_seconds = idle_seconds
        self._lock = threading.Lock()
        self._idle: list[queue.SimpleQueue[Callable[[], None]]] = []
        self._count = 0

    def submit(self, fn: Callable[[], None]) -> None:
        with self._lock:
            inbox = self._idle.pop() if self._idle else None
            self._count += inbox is None
            number = self._count
        if inbox is not None:
            inbox.put(fn)
            return
        inbox = queue.SimpleQueue()
        threading.Thread(
            target=self._loop, args=(inbox, fn), name=f"{self._name}-{number}", daemon=True
        ).start()

    def _loop(self, inbox: queue.SimpleQueue[Callable[[], None]], fn: Callable[[], None]) -> None:
        while True:
            try:
                contextvars.Context().run(fn)
            except Exception:  # a thread of its own would have ended with it
                LOG.exception("step functions worker ended with an exception")
            with self._lock:
                self._idle.append(inbox)
            try:
                fn = inbox.get(timeout=self._idle_seconds)
            except queue.Empty:
                with self._lock:
                    if inbox in self._idle:  # nobody picked it meanwhile: end
                        self._idle.remove(inbox)
                        return
                fn = inbox.get()  # picked while timing out: its task is coming


_WORKER_THREADS = _ReusedThreads("careflow-sfn-worker")


def _branch_worker_start(self: Any) -> None:
    """Replaces ``BranchWorker.start``, which starts a new thread for each branch of each
    Parallel evaluation, named after ``str(program)`` (a walk of the branch's whole
    component tree, for a thread name). The branch runs on a reused thread
    (:class:`_ReusedThreads`), concurrently with the others as before.
    """
    if self._worker_thread is not None:
        raise RuntimeError(f"Attempted to rerun BranchWorker for program ${self._program}.")
    self._worker_thread = threading.current_thread()  # replaced by the worker's own below

    def routine() -> None:
        self._worker_thread = threading.current_thread()  # moto logs its native_id
        self._thread_routine()

    _WORKER_THREADS.submit(routine)


def _execution_worker_start(self: Any) -> None:
    """Replaces ``ExecutionWorker.start``: the execution's program runs on a reused
    thread (:class:`_ReusedThreads`) instead of a new one per execution."""
    _WORKER_THREADS.submit(self._execution_logic)


def _make_cached_method_names(original: Any) -> Any:
    """Replaces ``method_names_from_class`` where moto's ``BaseResponse.call_action`` uses
    it: ``inspect.getmembers`` of the response class on every request. A class's methods
    do not change while the cloud runs."""
    return functools.lru_cache(maxsize=512)(original)


def _make_backend_lookup(original: Any) -> Any:
    """Replaces ``BackendDict.__getitem__``, which takes moto's global backend lock and
    scans every backend on every lookup (several per request) to create an account's
    backend the first time. Once created, the lookup is a plain dict read.
    """

    def getitem(self: Any, account_id: str) -> Any:
        try:
            return dict.__getitem__(self, account_id)
        except KeyError:
            return original(self, account_id)

    return getitem


def _make_cached_jsonpath_parse(original: Any) -> Any:
    """Replaces a module's ``parse`` from jsonpath_ng, which builds a new PLY parser for
    every path evaluated. Compiled paths are immutable; one per distinct path string.
    """
    return functools.lru_cache(maxsize=4096)(original)


_NOT_SET = object()


class _DottedPath:
    """A compiled ``$.a.b`` path (only named fields, as most ASL paths are) that answers
    ``find`` and ``update_or_create`` on plain dicts directly, as jsonpath_ng would: a
    match is a present key (its value may be null); ``update_or_create`` creates missing
    objects on the way and sets the last field. Anything else (a missing key on ``find``,
    a value on the way that is not a dict) goes to jsonpath_ng's expression, untouched.
    ``find`` gives its one match without the parent chain: moto's ``extract_json``, the
    only caller, reads the match's value and path.
    """

    def __init__(self, expression: Any, fields: tuple[str, ...]) -> None:
        from jsonpath_ng.jsonpath import DatumInContext, Fields

        self._expression = expression
        self._fields = fields
        self._last = Fields(fields[-1])
        self._datum = DatumInContext

    def find(self, data: Any) -> Any:
        value = data
        for name in self._fields:
            if type(value) is not dict:
                return self._expression.find(data)
            value = value.get(name, _NOT_SET)
            if value is _NOT_SET:
                return self._expression.find(data)
        return [self._datum(value, path=self._last)]

    def update_or_create(self, data: Any, value: Any) -> Any:
        node = data
        for name in self._fields[:-1]:  # first make sure nothing on the way is not a dict
            if type(node) is not dict:
                return self._expression.update_or_create(data, value)
            node = node.get(name)
            if node is None:
                break
        if type(node) is not dict and node is not None:
            return self._expression.update_or_create(data, value)
        if type(data) is not dict or callable(value):
            return self._expression.update_or_create(data, value)
        node = data
        for name in self._fields[:-1]:
            child = node.get(name, _NOT_SET)
            if child is _NOT_SET:
                child = node[name] = {}
            node = child
        node[self._fields[-1]] = value
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._expression, name)


def _dotted_fields(expression: Any) -> tuple[str, ...] | None:
    """The field names of ``$.a.b``-shaped compiled paths, or None."""
    from jsonpath_ng.jsonpath import Child, Fields, Root, auto_id_field

    fields: list[str] = []
    node = expression
    while isinstance(node, Child):
        right = node.right
        if (
            type(right) is not Fields
            or len(right.fields) != 1
            or right.fields[0] in ("*", auto_id_field)
            or getattr(right, "_deprecated_wildcard_use", False)
        ):
            return None
        fields.append(right.fields[0])
        node = node.left
    if type(node) is not Root or not fields:
        return None
    return tuple(reversed(fields))


def _make_state_entered_event_details(_original: Any) -> Any:
    """Replaces ``CommonStateField._get_state_entered_event_details``: the same details,
    without its copy of the state's input (which is only written out as JSON)."""
    from moto.stepfunctions.parser.api import (
        HistoryEventExecutionDataDetails,
        StateEnteredEventDetails,
    )
    from moto.stepfunctions.parser.asl.utils.encoding import to_json_str

    def details(self: Any, env: Any) -> Any:
        return StateEnteredEventDetails(
            name=self.name,
            input=to_json_str(env.states._states_data["input"], separators=(",", ":")),
            inputDetails=HistoryEventExecutionDataDetails(truncated=False),
        )

    return details


def _make_state_exited_event_details(_original: Any) -> Any:
    """Replaces ``CommonStateField._get_state_exited_event_details``: the same details,
    without its copy of the state's output (its input by then, only written out as JSON)."""
    from moto.stepfunctions.parser.api import (
        HistoryEventExecutionDataDetails,
        StateExitedEventDetails,
    )
    from moto.stepfunctions.parser.asl.utils.encoding import to_json_str

    def details(self: Any, env: Any) -> Any:
        event_details = StateExitedEventDetails(
            name=self.name,
            output=to_json_str(env.states._states_data["input"], separators=(",", ":")),
            outputDetails=HistoryEventExecutionDataDetails(truncated=False),
        )
        assigned_variables = env.variable_store.get_assigned_variables()
        env.variable_store.reset_tracing()
        if assigned_variables:
            event_details["assignedVariables"] = assigned_variables
            event_details["assignedVariablesDetails"] = {"truncated": False}
        return event_details

    return details


def _make_dotted_jsonpath_parse(original: Any) -> Any:
    """:func:`_make_cached_jsonpath_parse`, and ``$.a.b`` paths as :class:`_DottedPath`."""

    @functools.lru_cache(maxsize=4096)
    def parse(path: str) -> Any:
        expression = original(path)
        fields = _dotted_fields(expression)
        return expression if fields is None else _DottedPath(expression, fields)

    return parse


_QUERY_PARTITION = threading.local()
"""The (table, hash key) a base-table Query of this thread is reading, while it runs."""


def _make_partition_query(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def query(
        self: Any,
        hash_key: Any,
        range_comparison: Any,
        range_objs: Any,
        limit: Any,
        exclusive_start_key: Any,
        scan_index_forward: Any,
        projection_expressions: Any,
        index_name: Any = None,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        conditions = kwargs.get("hash_key_conditions") or ()  # an index Query's, by keyword
        narrow = bool(self.range_key_attr) and (
            hash_key is not None if index_name is None else bool(conditions)
        )
        if narrow:
            _QUERY_PARTITION.table = self
            _QUERY_PARTITION.hash_key = hash_key if index_name is None else None
            _QUERY_PARTITION.index_conditions = None if index_name is None else tuple(conditions)
        try:
            return original(
                self,
                hash_key,
                range_comparison,
                range_objs,
                limit,
                exclusive_start_key,
                scan_index_forward,
                projection_expressions,
                index_name,
                *args,
                **kwargs,
            )
        finally:
            if narrow:
                _QUERY_PARTITION.table = None

    return query


def _make_partition_all_items(original: Callable[..., Any]) -> Callable[..., Any]:
    """Inside a base-table Query (:func:`_make_partition_query`), ``all_items`` answers the
    queried partition's items in moto's order (by range key, as moto sorts by hash then
    range key): the only items the query keeps (it filters on ``hash_key ==``)."""

    @functools.wraps(original)
    def all_items(self: Any) -> Any:
        if getattr(_QUERY_PARTITION, "table", None) is not self:
            return original(self)
        table: Any = self
        conditions = _QUERY_PARTITION.index_conditions
        if conditions is not None:
            return _index_candidates(table, conditions)
        partition = table.items.get(_QUERY_PARTITION.hash_key)  # .get: a defaultdict
        if not partition:
            return []
        return sorted(partition.values(), key=lambda item: item.range_key)

    return all_items


def _index_candidates(table: Any, conditions: tuple[tuple[str, Any], ...]) -> list[Any]:
    """Inside an index Query, what ``all_items`` answers: the items whose index hash key
    attributes equal the query's (every item moto's own check then keeps, which it still
    makes), in ``all_items``' order (moto's sort key, stable, over the same iteration),
    so that its stable sort by the index's keys gives the same items in the same order.
    Each item is looked at once, but only the few candidates are sorted: moto sorts the
    whole table, with ``DynamoType`` comparisons, on every index Query."""
    found = []
    for partition in table.items.values():
        for item in partition.values():
            for name, value in conditions:
                got = item.attrs.get(name)
                if got is None or got != value:
                    break
            else:
                found.append(item)
    return sorted(found, key=lambda x: (x.hash_key, x.range_key) if x.range_key else x.hash_key)


def patches() -> list[Patch]:
    import jsonpath_ng
    import jsonpath_ng.ext
    from moto.utilities import aws_headers as moto_aws_headers

    exec_state = f"{ASL}.component.state.exec.execute_state"
    environment = f"{ASL}.eval.environment"
    program = f"{ASL}.component.program.program"
    patches = [
        Patch(
            f"{exec_state}:ExecutionState",
            "_evaluate_with_timeout",
            _make_evaluate_maybe_inline,
            params("self", "env"),
        ),
        Patch(
            exec_state,
            "Thread",
            lambda _o: _MaybeInlineThread,
            is_(
                threading.Thread,
                used_in=[(f"{exec_state}:ExecutionState._evaluate_with_timeout", "Thread(")],
            ),
        ),
        Patch(
            f"{program}:Program",
            "eval",
            _make_program_eval,
            all_of(
                params("self", "env"),
                source_has(
                    "threading.Thread(target=super().eval, args=(env,)",
                    "worker_thread.join(timeout=timeout)",
                ),
            ),
        ),
        Patch(
            f"{ASL}.component.state.exec.state_parallel.branch_worker:BranchWorker",
            "start",
            lambda _o: _branch_worker_start,
            all_of(
                params("self"),
                source_has(
                    'name=f"BranchWorker_${self._program}"',
                    "TMP_THREADS.append(self._worker_thread)",
                ),
            ),
        ),
        Patch(
            f"{SFN}.backend.execution_worker:ExecutionWorker",
            "start",
            lambda _o: _execution_worker_start,
            all_of(
                params("self"),
                source_has(
                    "Thread(target=self._execution_logic, daemon=True)",
                    "execution_logic_thread.start()",
                ),
            ),
        ),
        Patch(
            "moto.dynamodb.models.table:Table",
            "query",
            _make_partition_query,
            all_of(
                params(
                    "self",
                    "hash_key",
                    "range_comparison",
                    "range_objs",
                    "limit",
                    "exclusive_start_key",
                    "scan_index_forward",
                    "projection_expressions",
                    "index_name",
                    "consistent_read",
                    "filter_expression",
                    "hash_key_conditions",
                    "range_key_conditions",
                    "filter_kwargs",
                ),
                source_has(
                    "for item in self.all_items()",
                    "if isinstance(item, Item) and item.hash_key == hash_key",
                    # an index Query keeps items on its hash key conditions alone, then
                    # sorts them (what _index_candidates relies on)
                    "all_hash_conditions[attr_name] = value",
                    "for attr_name, expected_value in all_hash_conditions.items():",
                    "if not item_value or item_value != expected_value:",
                    "possible_results = self.sorted_items(",
                ),
            ),
        ),
        Patch(
            "moto.dynamodb.models.table:Table",
            "all_items",
            _make_partition_all_items,
            all_of(
                params("self"),
                source_has(
                    "for hash_set in self.items.values():",
                    "key=lambda x: (x.hash_key, x.range_key) if x.range_key else x.hash_key,",
                ),
            ),
        ),
        Patch(
            "moto.core.responses",
            "method_names_from_class",
            _make_cached_method_names,
            params("clazz"),
        ),
        Patch(
            "moto.core.base_backend:BackendDict",
            "__getitem__",
            _make_backend_lookup,
            params("self", "account_id"),
        ),
        Patch(
            f"{ASL}.parse.asl_parser:AmazonStateLanguageParser",
            "parse",
            _make_cached_asl_parse,
            params("definition"),
        ),
        Patch(
            f"{ASL}.utils.json_path",
            "parse",
            _make_dotted_jsonpath_parse,
            is_(
                jsonpath_ng.ext.parse,
                used_in=[(f"{ASL}.utils.json_path.extract_json", "input_expr.find(data)")],
            ),
        ),
        Patch(
            f"{ASL}.component.common.path.result_path",
            "parse",
            _make_dotted_jsonpath_parse,
            is_(
                jsonpath_ng.parse,
                used_in=[
                    (
                        f"{ASL}.component.common.path.result_path:ResultPath._eval_body",
                        "result_expr.update_or_create(",
                    )
                ],
            ),
        ),
        Patch(
            "jsonpath_ng.ext",
            "parse",
            _make_cached_jsonpath_parse,
            is_(
                jsonpath_ng.ext.parse,
                used_in=[
                    (
                        "moto.events.utils:EventTemplateParser.parse",
                        "from jsonpath_ng.ext import parse",
                    )
                ],
            ),
        ),
        Patch(
            f"{ASL}.eval.states:States",
            "get_input",
            None,
            source_has('return self._extract(query, self._states_data["input"])'),
        ),
        Patch(
            f"{ASL}.component.state.state:CommonStateField",
            "_get_state_entered_event_details",
            _make_state_entered_event_details,
            all_of(
                params("self", "env"),
                source_has(
                    "name=self.name",
                    'input=to_json_str(env.states.get_input(), separators=(",", ":"))',
                    "inputDetails=HistoryEventExecutionDataDetails(",
                    "truncated=False",
                ),
            ),
        ),
        Patch(
            f"{ASL}.component.state.state:CommonStateField",
            "_get_state_exited_event_details",
            _make_state_exited_event_details,
            all_of(
                params("self", "env"),
                source_has(
                    'output=to_json_str(env.states.get_input(), separators=(",", ":"))',
                    "assigned_variables = env.variable_store.get_assigned_variables()",
                    "env.variable_store.reset_tracing()",
                    'event_details["assignedVariables"] = assigned_variables',
                    'event_details["assignedVariablesDetails"] = {"truncated": False}',
                ),
            ),
        ),
        Patch(
            "moto.core.serialize:AttributePicker",
            "__call__",
            _make_cached_picker_call,
            all_of(
                params("self", "context"),
                source_has("self.get_possible_keys(context)", "self.response_transformers"),
            ),
        ),
        Patch(
            "moto.core.serialize:ResponseSerializer",
            "_serialize_structure_member",
            _make_skip_absent_members,
            all_of(
                params("self", "serialized", "value", "shape", "key"),
                source_has(
                    "member_value = self.get_value(value, key, shape)",
                    "if member_value is not None:",
                    "self._serialize(serialized, member_value, shape, key)",
                ),
            ),
        ),
        Patch(
            "moto.core.responses",
            "gen_amzn_requestid_long",
            lambda _o: _request_id,
            is_(
                moto_aws_headers.gen_amzn_requestid_long,
                used_in=[
                    (
                        "moto.core.responses:BaseResponse._enrich_response",
                        "gen_amzn_requestid_long(headers)",
                    )
                ],
            ),
        ),
    ]
    # The interpreter deep-copies the state on every read (``States.get_input``), every
    # path and every result: most of its Python-level calls.
    for module, function in (
        (f"{ASL}.eval.states", "States._extract"),
        (f"{ASL}.eval.states", "States.reset"),
        (f"{ASL}.component.common.string.string_expression", "StringJsonPath._eval_body"),
        (f"{ASL}.component.common.path.result_path", "ResultPath._eval_body"),
        (exec_state, "ExecutionState._evaluate_with_timeout"),
        (f"{ASL}.component.state.exec.state_parallel.state_parallel", "StateParallel._eval_state"),
        (
            f"{ASL}.component.state.exec.state_task.service.state_task_service",
            "StateTaskService._eval_execution",
        ),
        (f"{ASL}.eval.event.event_manager", "EventManager._create_history_log"),
        (environment, "Environment.program_state"),
        (environment, "Environment.as_inner_frame_of"),
    ):
        class_name, _, method = function.partition(".")
        patches.append(
            Patch(
                module,
                "copy",
                lambda _o: _COPY_VIA_PICKLE,
                is_(_copy_module, used_in=[(f"{module}:{class_name}.{method}", "copy.deepcopy(")]),
            )
        )
    return patches
