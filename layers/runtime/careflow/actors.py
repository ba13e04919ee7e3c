"""Who may work human tasks: each person's id (``user:<name>``) and the roles they hold.

The roles allowed on a queue are policy (``queue_roles`` in each workflow's policy,
pinned per instance); which roles a person holds is this directory. The built-in one is
the sandbox hospital's staff; a deployment names its own in a JSON file
(``CAREFLOW_ACTORS_FILE``: a list of ``{"id", "roles"}``), read once per process, as
:mod:`careflow.facilities` does. An actor not in the directory holds no role.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError

ACTORS_FILE_ENV = "CAREFLOW_ACTORS_FILE"
ACTOR_PATTERN = r"^user:[a-z0-9][a-z0-9._-]{0,62}$"
ROLE_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"

Role = Annotated[str, StringConstraints(pattern=ROLE_PATTERN)]


class Actor(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=ACTOR_PATTERN)
    roles: tuple[Role, ...] = Field(min_length=1)


class Directory:
    """Actor id → roles; ``roles_of`` an unknown id is the empty set."""

    def __init__(self, actors: Iterable[Actor]) -> None:
        self._roles: Mapping[str, frozenset[str]] = {a.id: frozenset(a.roles) for a in actors}

    def roles_of(self, actor: str) -> frozenset[str]:
        return self._roles.get(actor, frozenset())

    def ids(self) -> list[str]:
        return sorted(self._roles)


# The sandbox hospital's people who work the demo's and the tests' queues. Leads and the
# director supervise (reassign or release a colleague's claim; see the policies' tables).
BUILT_IN: tuple[Actor, ...] = (
    Actor(id="user:coordinator-mdiaz", roles=("care_coordinator",)),
    Actor(id="user:coordinator-akim", roles=("care_coordinator",)),
    Actor(id="user:cc-lead-bokafor", roles=("care_coordinator", "care_coordination_lead")),
    Actor(id="user:casemgr-lrossi", roles=("case_manager",)),
    Actor(id="user:scheduler-tnguyen", roles=("scheduler",)),
    Actor(id="user:buyer-jlee", roles=("supply_chain_buyer",)),
    Actor(id="user:buyer-cwong", roles=("supply_chain_buyer",)),
    Actor(id="user:supply-mgr-dpatel", roles=("supply_chain_buyer", "supply_chain_manager")),
    Actor(id="user:sp-lead-emartin", roles=("sterile_processing_lead",)),
    Actor(id="user:urn-pkaur", roles=("utilization_review_nurse",)),
    Actor(id="user:urn-sbrown", roles=("utilization_review_nurse",)),
    Actor(id="user:ur-lead-hcohen", roles=("utilization_review_nurse", "utilization_review_lead")),
    Actor(id="user:director-rsingh", roles=("department_director",)),
)


class ActorsFileError(ValueError):
    """The actors file cannot be used; the message says why in one line."""


@lru_cache(maxsize=1)
def _directory(path: str | None) -> Directory:
    if not path:
        return Directory(BUILT_IN)
    try:
        text = Path(path).read_bytes().decode("utf-8-sig")
        items = TypeAdapter(list[Actor]).validate_python(json.loads(text))
    except OSError as exc:
        raise ActorsFileError(f"{ACTORS_FILE_ENV}: cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ActorsFileError(f"{ACTORS_FILE_ENV}: {path} is not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise ActorsFileError(
            f"{ACTORS_FILE_ENV}: {path} is not JSON (line {exc.lineno})"
        ) from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ActorsFileError(f"{ACTORS_FILE_ENV}: {path}: entry {where}: {first['msg']}") from None
    ids = [a.id for a in items]
    if len(set(ids)) != len(ids):
        raise ActorsFileError(f"{ACTORS_FILE_ENV}: {path} names an actor twice")
    return Directory(items)


def directory() -> Directory:
    """The directory in force: the deployment's file, else the built-in one."""
    return _directory(os.environ.get(ACTORS_FILE_ENV) or None)
