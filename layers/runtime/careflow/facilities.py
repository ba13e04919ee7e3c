"""The facilities careflow serves: identifier, name and IANA time zone.

One registry for every part that needs to know a facility: intake refuses events for a
facility that is not here, and what people read (the demo, task lists) shows times in
the facility's own zone. The built-in list is the sandbox hospital's; a deployment
names its own in a JSON file (``CAREFLOW_FACILITIES_FILE``: a list of
``{"id", "name", "time_zone"}``, optionally ``"hl7_names"``: what its HL7 v2 feeds call
it), read once per process.
"""

from __future__ import annotations

import os
from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from careflow.config_file import read_list

FACILITIES_FILE_ENV = "CAREFLOW_FACILITIES_FILE"


class Facility(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")
    name: str = Field(min_length=1, max_length=200)
    time_zone: str
    hl7_names: tuple[str, ...] = Field(
        default=(),
        description="the names HL7 v2 feeds give it (MSH-4.1, PV1-3.4.1), matched exactly",
    )

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"not an IANA time zone: {value}") from exc
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def local(self, when: datetime) -> datetime:
        """``when`` (aware) in the facility's time zone."""
        return when.astimezone(self.zone)


BUILT_IN: tuple[Facility, ...] = (
    Facility(
        id="fac-north",
        name="North Valley Medical Center",
        time_zone="America/Chicago",
        hl7_names=("NVMC",),
    ),
    Facility(
        id="fac-south", name="South Bay Hospital", time_zone="America/Chicago", hl7_names=("SBH",)
    ),
    Facility(
        id="fac-asc",
        name="Riverside Surgery Center",
        time_zone="America/Chicago",
        hl7_names=("RSC",),
    ),
)


class FacilitiesFileError(ValueError):
    """The facilities file cannot be used; the message says why in one line."""


@lru_cache(maxsize=1)
def _registry(path: str | None) -> dict[str, Facility]:
    if not path:
        return {f.id: f for f in BUILT_IN}
    items = read_list(
        path,
        Facility,
        env=FACILITIES_FILE_ENV,
        error=FacilitiesFileError,
        key=lambda f: f.id,
        noun="a facility",
    )
    return {f.id: f for f in items}


def facilities() -> dict[str, Facility]:
    return dict(_registry(os.environ.get(FACILITIES_FILE_ENV) or None))


def facility(facility_id: str) -> Facility | None:
    return _registry(os.environ.get(FACILITIES_FILE_ENV) or None).get(facility_id)


def zone_of(facility_id: str) -> ZoneInfo:
    """The facility's time zone; UTC for a facility the registry does not hold."""
    found = facility(facility_id)
    return found.zone if found else ZoneInfo("UTC")


def by_hl7_name(name: str) -> Facility | None:
    """The facility an HL7 v2 feed calls ``name`` (MSH-4 or PV1-3.4), or None."""
    for item in _registry(os.environ.get(FACILITIES_FILE_ENV) or None).values():
        if name in item.hl7_names:
            return item
    return None


def is_known(facility_id: str) -> bool:
    return facility(facility_id) is not None
