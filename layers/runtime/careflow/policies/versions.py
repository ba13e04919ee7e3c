"""Version numbers of policy files, and the version string of a resolved snapshot.

A file's ``version`` is one to four dot-separated whole numbers (``2026.11.1``, ``3``),
compared number by number. A snapshot's version names what it was built from:
``<name>@<enterprise version>`` or ``<name>@<enterprise version>+<facility>@<overlay version>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from careflow.policies.errors import PolicyError

VERSION_PATTERN = r"^[0-9]{1,6}(\.[0-9]{1,6}){0,3}$"
NAME_PATTERN = r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$"
FACILITY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
_VERSION = re.compile(VERSION_PATTERN)
_NAME = re.compile(NAME_PATTERN)
_FACILITY = re.compile(FACILITY_PATTERN)
_SNAPSHOT = re.compile(r"^(?P<name>[^@+]+)@(?P<ev>[^@+]+)(\+(?P<facility>[^@+]+)@(?P<ov>[^@+]+))?$")


def version_key(version: str) -> tuple[int, ...]:
    """``"2026.11.1"`` -> ``(2026, 11, 1)``: versions compare as these tuples."""
    if not _VERSION.match(version):
        raise PolicyError(f"not a version: {version!r} (use 1 to 4 dot-separated numbers)")
    return tuple(int(part) for part in version.split("."))


def sort_key(version: str) -> str:
    """Zero-padded, so that strings sort like versions (``2026.11.1`` -> ``002026.000011.000001``).

    ``.`` sorts before every digit, so ``3`` < ``3.1`` < ``4`` holds for the strings too.
    """
    return ".".join(f"{part:06d}" for part in version_key(version))


def is_name(text: str) -> bool:
    return bool(_NAME.match(text))


def is_facility(text: str) -> bool:
    return bool(_FACILITY.match(text))


@dataclass(frozen=True)
class SnapshotVersion:
    name: str
    enterprise: str
    facility_id: str | None = None
    overlay: str | None = None

    def __str__(self) -> str:
        text = f"{self.name}@{self.enterprise}"
        if self.facility_id is not None and self.overlay is not None:
            text += f"+{self.facility_id}@{self.overlay}"
        return text

    @classmethod
    def parse(cls, text: str) -> SnapshotVersion:
        m = _SNAPSHOT.match(text.strip())
        if not m:
            raise PolicyError(
                f"not a policy version: {text!r} "
                "(expected NAME@VERSION or NAME@VERSION+FACILITY@VERSION)"
            )
        parsed = cls(m["name"], m["ev"], m["facility"], m["ov"])
        if not is_name(parsed.name):
            raise PolicyError(f"not a policy name: {parsed.name!r}")
        version_key(parsed.enterprise)
        if parsed.overlay is not None:
            version_key(parsed.overlay)
        if parsed.facility_id is not None and not is_facility(parsed.facility_id):
            raise PolicyError(f"not a facility id: {parsed.facility_id!r}")
        return parsed
