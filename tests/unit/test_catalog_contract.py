"""The catalog and the ASL files cannot drift apart."""

import importlib
import json

import pytest

from careflow import catalog
from careflow.catalog import CATALOG, PLACEHOLDER, all_functions

WORKFLOWS = [pytest.param(wf, id=wf.id) for wf in CATALOG]
FUNCTIONS = [pytest.param(fn, id=fn.name) for fn in all_functions().values()]
FAKE_ARNS = {name: f"arn:aws:lambda:us-east-1:1:function:{name}" for name in all_functions()}
FAKE_MACHINES = {wf.id: f"arn:aws:states:us-east-1:1:stateMachine:{wf.name}" for wf in CATALOG}


def states(definition):
    """Every state, including those inside Parallel branches and Map iterators."""
    for name, state in definition["States"].items():
        yield name, state
        for branch in state.get("Branches", []):
            yield from states(branch)
        for key in ("Iterator", "ItemProcessor"):
            if key in state:
                yield from states(state[key])


@pytest.mark.parametrize("wf", WORKFLOWS)
def test_every_placeholder_is_filled_by_the_catalog(wf):
    subs = wf.substitutions(
        FAKE_ARNS, event_bus_name="bus", table_name="table", state_machine_arns=FAKE_MACHINES
    )
    assert wf.placeholders() <= subs.keys(), wf.placeholders() - subs.keys()
    rendered = json.dumps(
        wf.render(
            FAKE_ARNS, event_bus_name="bus", table_name="table", state_machine_arns=FAKE_MACHINES
        )
    )
    assert not PLACEHOLDER.search(rendered)


@pytest.mark.parametrize("wf", WORKFLOWS)
def test_every_function_of_the_workflow_is_used_by_its_asl(wf):
    used = wf.placeholders()
    unused = [fn.name for fn in wf.functions if fn.placeholder not in used]
    assert unused == []


@pytest.mark.parametrize("fn", FUNCTIONS)
def test_every_handler_path_imports(fn):
    module = importlib.import_module(f"lambdas.{fn.module}")
    assert callable(getattr(module, fn.attribute))
    assert (catalog.LAMBDAS_DIR / f"{fn.module}.py").is_file()


@pytest.mark.parametrize("wf", WORKFLOWS)
def test_every_task_state_retries_and_catches(wf):
    definition = wf.render(
        FAKE_ARNS, event_bus_name="bus", table_name="table", state_machine_arns=FAKE_MACHINES
    )
    missing = []
    for name, state in states(definition):
        if state["Type"] != "Task":
            continue
        if not state.get("Retry"):
            missing.append(f"{name}: no Retry")
        # Catch may be left out only where a failure must fail the execution loudly, or where
        # the state is itself a Catch target that records a failure.
        if (
            not state.get("Catch")
            and not name.endswith("Failed")
            and name
            not in {
                "EvaluateReadiness",
                "EscalateCoordinatorTask",
                "FinalizeCase",
                "Conclude",
                "PublishOutcome",
            }
        ):
            missing.append(f"{name}: no Catch")
        for catch in state.get("Catch", []):
            if catch.get("ResultPath") is None:
                missing.append(f"{name}: Catch without ResultPath")
    assert missing == []


@pytest.mark.parametrize("wf", WORKFLOWS)
def test_every_transition_targets_an_existing_state(wf):
    definition = wf.render(
        FAKE_ARNS, event_bus_name="bus", table_name="table", state_machine_arns=FAKE_MACHINES
    )

    def check(d):
        names = set(d["States"])
        assert d["StartAt"] in names
        for name, state in d["States"].items():
            targets = [state.get("Next"), state.get("Default")]
            targets += [c["Next"] for c in state.get("Choices", [])]
            targets += [c["Next"] for c in state.get("Catch", [])]
            for t in filter(None, targets):
                assert t in names, f"{name} → {t}"
            for branch in state.get("Branches", []):
                check(branch)

    check(definition)


def test_the_asl_uses_jsonpath_only():
    for wf in CATALOG:
        definition = json.loads(wf.definition_text())
        assert definition.get("QueryLanguage", "JSONPath") == "JSONPath"
        assert all(s.get("QueryLanguage", "JSONPath") == "JSONPath" for _, s in states(definition))


def test_workflow_ids_and_names_are_unique():
    assert len({wf.id for wf in CATALOG}) == len(CATALOG)
    assert len({wf.name for wf in CATALOG}) == len(CATALOG)


def test_triggers_follow_the_event_conventions():
    for wf in CATALOG:
        for trigger in wf.triggers:
            assert trigger.source.startswith("careflow.")
            entity, verb = trigger.detail_type.split(".")
            assert entity[0].isupper() and verb[0].isupper()
