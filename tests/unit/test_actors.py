"""The actor directory: built in for the sandbox hospital, or from a deployment's file."""

from __future__ import annotations

import json

import pytest

from careflow import actors


@pytest.fixture(autouse=True)
def _fresh_directory():
    actors._directory.cache_clear()
    yield
    actors._directory.cache_clear()


def test_the_built_in_directory_names_the_sandbox_hospitals_people_and_their_roles(monkeypatch):
    monkeypatch.delenv(actors.ACTORS_FILE_ENV, raising=False)
    people = actors.directory()
    assert people.roles_of("user:buyer-jlee") == {"supply_chain_buyer"}
    assert people.roles_of("user:cc-lead-bokafor") == {"care_coordinator", "care_coordination_lead"}
    assert people.roles_of("user:nobody") == frozenset()
    assert people.roles_of("") == frozenset()


def test_a_deployment_names_its_own_people(tmp_path, monkeypatch):
    path = tmp_path / "actors.json"
    path.write_text(json.dumps([{"id": "user:rn-1", "roles": ["utilization_review_nurse"]}]))
    monkeypatch.setenv(actors.ACTORS_FILE_ENV, str(path))
    people = actors.directory()
    assert people.ids() == ["user:rn-1"]
    assert people.roles_of("user:buyer-jlee") == frozenset()


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("{", "is not JSON (line 1)"),
        (json.dumps([{"id": "jlee", "roles": ["x"]}]), "entry 0.id"),
        (json.dumps([{"id": "user:a", "roles": []}]), "entry 0.roles"),
        (json.dumps([{"id": "user:a", "roles": ["Buyer"]}]), "entry 0.roles.0"),
        (
            json.dumps([{"id": "user:a", "roles": ["x"]}, {"id": "user:a", "roles": ["y"]}]),
            "names an actor twice",
        ),
    ],
)
def test_a_bad_file_is_refused_in_one_line(tmp_path, monkeypatch, content, says):
    path = tmp_path / "actors.json"
    path.write_text(content)
    monkeypatch.setenv(actors.ACTORS_FILE_ENV, str(path))
    with pytest.raises(actors.ActorsFileError) as err:
        actors.directory()
    assert says in str(err.value) and "\n" not in str(err.value)
