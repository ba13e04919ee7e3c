"""Who may work human tasks: each person's id (``user:<name>``) and the roles they hold.

The roles allowed on a queue are policy (``queue_roles`` in each workflow's policy,
pinned per instance); which roles a person holds is this directory. The built-in one is
the sandbox hospital's staff; a deployment names its own in a JSON file
(``CAREFLOW_ACTORS_FILE``: a list of ``{"id", "roles"}``), read once per process, as
:mod:`careflow.facilities` does. An actor not in the directory holds no role.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from careflow.config_file import read_list

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
    Actor(id="user:charge-rn-okeller", roles=("charge_nurse",)),
    Actor(id="user:scheduler-tnguyen", roles=("scheduler",)),
    Actor(id="user:buyer-jlee", roles=("supply_chain_buyer",)),
    Actor(id="user:buyer-cwong", roles=("supply_chain_buyer",)),
    Actor(id="user:supply-mgr-dpatel", roles=("supply_chain_buyer", "supply_chain_manager")),
    Actor(id="user:sp-lead-emartin", roles=("sterile_processing_lead",)),
    Actor(id="user:urn-pkaur", roles=("utilization_review_nurse",)),
    Actor(id="user:urn-sbrown", roles=("utilization_review_nurse",)),
    Actor(id="user:ur-lead-hcohen", roles=("utilization_review_nurse", "utilization_review_lead")),
    Actor(id="user:staffing-jortiz", roles=("staffing_coordinator",)),
    Actor(id="user:house-sup-kwalsh", roles=("house_supervisor",)),
    Actor(id="user:director-rsingh", roles=("department_director",)),
    # -- payables (issue 11) --
    Actor(id="user:ap-clerk-mgarcia", roles=("ap_clerk",)),
    Actor(id="user:ap-clerk-dokoro", roles=("ap_clerk",)),
    Actor(id="user:ap-sup-tbrooks", roles=("ap_clerk", "ap_supervisor")),
    Actor(id="user:ap-mgr-lchen", roles=("ap_supervisor", "ap_manager")),
    Actor(id="user:controller-nhall", roles=("ap_manager", "controller")),
    # -- procurement (issue 11): approvers and the item-master team --
    Actor(id="user:dept-mgr-agarcia", roles=("department_manager",)),
    Actor(id="user:cfo-mthompson", roles=("cfo",)),
    Actor(id="user:capital-cmte-lchen", roles=("capital_committee",)),
    Actor(id="user:item-master-bnovak", roles=("item_master_analyst",)),
    Actor(id="user:budget-analyst-pwright", roles=("budget_analyst",)),
    # -- revenue cycle: the DNFB queues (charge capture, documentation, coding, PFS) --
    Actor(id="user:chg-capture-rpatel", roles=("charge_capture_analyst",)),
    Actor(id="user:surgeon-okafor", roles=("surgeon",)),
    Actor(id="user:surgeon-lindqvist", roles=("surgeon",)),
    Actor(id="user:periop-rn-lvega", roles=("periop_nurse",)),
    Actor(id="user:coder-aberg", roles=("coder",)),
    Actor(id="user:access-gdiaz", roles=("patient_access_rep",)),
    Actor(id="user:pfs-lmoreno", roles=("pfs_representative",)),
    Actor(
        id="user:rev-int-kharris",
        roles=("charge_capture_analyst", "coder", "revenue_integrity_supervisor"),
    ),
    Actor(id="user:rev-dir-owu", roles=("revenue_integrity_supervisor", "revenue_cycle_director")),
)


class ActorsFileError(ValueError):
    """The actors file cannot be used; the message says why in one line."""


@lru_cache(maxsize=1)
def _directory(path: str | None) -> Directory:
    if not path:
        return Directory(BUILT_IN)
    return Directory(
        read_list(
            path,
            Actor,
            env=ACTORS_FILE_ENV,
            error=ActorsFileError,
            key=lambda a: a.id,
            noun="an actor",
        )
    )


def directory() -> Directory:
    """The directory in force: the deployment's file, else the built-in one."""
    return _directory(os.environ.get(ACTORS_FILE_ENV) or None)
