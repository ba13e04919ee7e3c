"""careflow.localcloud.moto is a package without import cycles, and the only place that
patches moto."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import careflow

PACKAGE = Path(careflow.__file__).parent / "localcloud" / "moto"
NAME = "careflow.localcloud.moto"
MODULES = sorted(p.stem for p in PACKAGE.glob("*.py"))
ROOT = Path(__file__).resolve().parents[2]


def _imports_of(module: str) -> set[str]:
    """The package's modules that ``module`` imports (``__init__`` for the package)."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:
                base = node.module
            elif node.level == 0 and node.module and node.module.startswith(NAME):
                base = node.module[len(NAME) + 1 :] or None
            else:
                continue
            if base is None:  # from . import x: x is a module, or a name of __init__
                for alias in node.names:
                    found.add(alias.name if alias.name in MODULES else "__init__")
            else:
                found.add(base.split(".")[0])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(NAME + "."):
                    found.add(alias.name[len(NAME) + 1 :].split(".")[0])
                elif alias.name == NAME:
                    found.add("__init__")
    found.discard(module)
    return found


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    visiting: list[str] = []
    done: set[str] = set()

    def visit(node: str) -> list[str] | None:
        if node in visiting:
            return [*visiting[visiting.index(node) :], node]
        if node in done:
            return None
        visiting.append(node)
        for nxt in sorted(graph.get(node, ())):
            found = visit(nxt)
            if found:
                return found
        visiting.pop()
        done.add(node)
        return None

    for start in sorted(graph):
        found = visit(start)
        if found:
            return found
    return None


def test_the_package_has_its_concern_modules():
    assert {
        "__init__",
        "check",
        "children",
        "clients",
        "clock",
        "events",
        "fidelity",
        "inprocess",
        "lambda_",
        "patches",
        "shapes",
        "speed",
        "state",
    } <= set(MODULES)


def test_the_intra_package_import_graph_is_acyclic():
    graph = {module: _imports_of(module) for module in MODULES}
    assert graph["state"] == set()  # the base every module may import
    assert "patches" in graph["__init__"]
    assert all("__init__" not in deps for module, deps in graph.items() if module != "__init__")
    assert _cycle(graph) is None, _cycle(graph)


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("module", MODULES)
def test_each_module_imports_first_in_a_fresh_interpreter(module):
    target = NAME if module == "__init__" else f"{NAME}.{module}"
    proc = subprocess.run(
        [sys.executable, "-c", f"import {target}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_nothing_outside_the_package_assigns_to_moto():
    """No module of careflow outside the package sets an attribute of a moto object
    (``X.attr = ...`` / ``setattr`` on something imported from moto)."""
    offenders = []
    for path in (Path(careflow.__file__).parent).rglob("*.py"):
        if PACKAGE in path.parents:
            continue
        tree = ast.parse(path.read_text())
        moto_names = {
            alias.asname or alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("moto")
            for alias in node.names
        }
        for node in ast.walk(tree):
            targets = node.targets if isinstance(node, ast.Assign) else []
            for target in targets:
                if (
                    isinstance(target, ast.Attribute)
                    and isinstance(target.value, ast.Name)
                    and target.value.id in moto_names
                ):
                    offenders.append(f"{path.name}:{node.lineno}")
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "setattr"
                and node.args
                and isinstance(node.args[0], ast.Name)
                and node.args[0].id in moto_names
            ):
                offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []


def test_the_check_table_says_ok_for_every_patch_on_the_pinned_moto():
    proc = subprocess.run(
        [sys.executable, "-m", f"{NAME}.check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    rows, summary = lines[:-1], lines[-1]
    assert len(rows) > 50
    assert all(row.endswith("  ok") for row in rows)
    assert any("LambdaSimpleBackend.invoke" in row and row.startswith("lambda_") for row in rows)
    assert summary.endswith(f"{len(rows)} of {len(rows)} patches apply")


def test_the_check_table_names_what_no_longer_applies():
    from careflow.localcloud.moto.check import table
    from careflow.localcloud.moto.patches import CheckResult
    from careflow.localcloud.moto.shapes import Patch, params

    fine = Patch("m", "ok_attr", None, params(), concern="speed")
    broken = Patch("m:C", "gone", None, params(), concern="clock")
    lines = table([CheckResult(fine, None), CheckResult(broken, "missing")])
    assert lines[0].split() == ["speed", "m.ok_attr", "ok"]
    assert lines[1].split()[:2] == ["clock", "m:C.gone"]
    assert lines[1].endswith("no longer applies: missing")


def test_a_patch_whose_target_changed_is_reported_not_raised():
    """In a fresh interpreter (moto as released): one target changed, one line says so."""
    script = (
        "from moto.awslambda_simple.models import LambdaSimpleBackend\n"
        "LambdaSimpleBackend.invoke = lambda self, function_name, body: b''\n"
        "from careflow.localcloud.moto import check\n"
        "raise SystemExit(check.main())\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr[-2000:]
    rows = proc.stdout.strip().splitlines()[:-1]
    broken = [row for row in rows if not row.endswith("  ok")]
    assert len(broken) == 1
    assert "LambdaSimpleBackend.invoke" in broken[0]
    assert "no longer applies: has parameters ['self', 'function_name', 'body']" in broken[0]
    summary = proc.stdout.strip().splitlines()[-1]
    assert summary.endswith(f"{len(rows) - 1} of {len(rows)} patches apply")


def test_shapes_are_not_checked_while_patched(cloud):
    from careflow.localcloud import moto as patched_moto

    assert patched_moto.is_installed()  # the session's local cloud
    with pytest.raises(RuntimeError, match="fresh"):
        patched_moto.check_shapes()


def test_moto_check_is_its_own_target_outside_make_test():
    makefile = (ROOT / "Makefile").read_text()
    assert "\nmoto-check:" in makefile
    test_recipe = makefile.split("\ntest:", 1)[1].split("\n\n", 1)[0]
    assert "moto-check" not in test_recipe and "MOTO_CHECK" not in test_recipe
    recipe = makefile.split("\nmoto-check:", 1)[1].split("\n\n", 1)[0]
    assert "/tmp/" in makefile.split("MOTO_CHECK_VENV ?=", 1)[1].splitlines()[0]
    assert "$(VENV)" not in recipe and ".venv" not in recipe
    assert "pip install -U 'moto[server]'" in recipe.replace("--quiet ", "")
    assert "careflow.localcloud.moto.check" in recipe


def test_a_stop_waits_for_the_program_to_begin_then_stops_it():
    """``fidelity._make_stop``: moto's worker builds the environment in its own thread;
    the stop waits for it rather than failing on ``None.set_stop``."""
    import threading
    from types import SimpleNamespace

    from careflow.localcloud.moto import fidelity

    worker = SimpleNamespace(env=None)
    stopped: list[Any] = []

    def original(execution: Any, stop_date: Any, error: Any, cause: Any) -> None:
        stopped.append((execution.exec_worker.env._program_state, error, cause))

    def begin() -> None:
        worker.env = SimpleNamespace(_program_state=None)
        worker.env._program_state = "running"

    threading.Timer(0.05, begin).start()
    fidelity._make_stop(original)(SimpleNamespace(exec_worker=worker), None, "E", "C")
    assert stopped == [("running", "E", "C")]


def test_a_stop_of_an_execution_with_no_worker_does_not_wait():
    from types import SimpleNamespace

    from careflow.localcloud.moto import fidelity

    calls: list[Any] = []
    fidelity._make_stop(lambda *a: calls.append(a))(SimpleNamespace(exec_worker=None), 1, 2, 3)
    assert len(calls) == 1
