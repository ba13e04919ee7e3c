"""Resolve the policy an instance starts with, load the one it pinned, publish new ones."""

from __future__ import annotations

from datetime import datetime

from careflow.policies.errors import PolicyError, PolicyNotFound, StaleVersion
from careflow.policies.model import Document, EnterprisePolicy, FacilityOverlay, effective_at
from careflow.policies.runtime import runtime_store
from careflow.policies.snapshot import PolicySnapshot, build_snapshot
from careflow.policies.store import FilePolicyStore, PolicyReader, PolicyStore, PublishResult
from careflow.policies.versions import SnapshotVersion


def _in_effect(
    store: PolicyReader, name: str, facility_id: str | None, at: datetime
) -> Document | None:
    """The newest version in effect at ``at``: the current one, unless it starts later."""
    current = store.current(name, facility_id)
    if current is None or effective_at(current, at):
        return current
    for doc in reversed(store.history(name, facility_id)):
        if effective_at(doc, at):
            return doc
    return None


def resolve(
    name: str,
    facility_id: str | None,
    *,
    at: datetime | None = None,
    store: PolicyReader | None = None,
) -> PolicySnapshot:
    """The policy in effect for ``facility_id`` at ``at`` (default: now): the enterprise
    policy with the facility's overlay, if it has one. Call once, at instance start, and
    keep ``snapshot.version`` (or the whole snapshot) in the instance's state.

    Without ``store``: the state table over the packaged files when ``TABLE_NAME`` is set,
    else the packaged files (:func:`careflow.policies.runtime.runtime_store`)."""
    from careflow import clock

    store = store or runtime_store()
    when = at or clock.now()
    base = _in_effect(store, name, None, when)
    if not isinstance(base, EnterprisePolicy):
        raise PolicyNotFound(f"no enterprise policy {name!r} in effect at {when.isoformat()}")
    overlay = None
    if facility_id is not None:
        found = _in_effect(store, name, facility_id, when)
        overlay = found if isinstance(found, FacilityOverlay) else None
    return build_snapshot(base, overlay, facility_id)


def load(
    name: str, facility_id: str | None, version: str, *, store: PolicyReader | None = None
) -> PolicySnapshot:
    """Exactly the snapshot ``version`` names (as recorded at instance start), whatever has
    been published since. Versions are immutable, so the result may be cached."""
    store = store or runtime_store()
    wanted = SnapshotVersion.parse(version)
    if wanted.name != name:
        raise PolicyError(f"version {version} is not a version of {name}")
    if wanted.facility_id is not None and wanted.facility_id != facility_id:
        raise PolicyError(f"version {version} belongs to facility {wanted.facility_id}")
    base = store.get(name, None, wanted.enterprise)
    if not isinstance(base, EnterprisePolicy):
        raise PolicyNotFound(f"{name} enterprise version {wanted.enterprise} is not in the store")
    overlay = None
    if wanted.facility_id is not None and wanted.overlay is not None:
        found = store.get(name, wanted.facility_id, wanted.overlay)
        if not isinstance(found, FacilityOverlay):
            raise PolicyNotFound(
                f"{name} overlay {wanted.facility_id}@{wanted.overlay} is not in the store"
            )
        overlay = found
    return build_snapshot(base, overlay, facility_id)


def check_compatible(store: PolicyReader, document: Document, source: str | None = None) -> None:
    """Raises :class:`InvalidPolicy` if ``document`` would not merge with what is current:
    an overlay with the current enterprise policy; an enterprise policy with every
    facility's current overlay."""
    if isinstance(document, FacilityOverlay):
        base = store.current(document.name, None)
        if not isinstance(base, EnterprisePolicy):
            raise PolicyNotFound(f"no enterprise policy {document.name!r} to overlay")
        build_snapshot(base, document, document.facility_id, source=source)
        return
    for facility in store.overlay_facilities(document.name):
        overlay = store.current(document.name, facility)
        if isinstance(overlay, FacilityOverlay):
            build_snapshot(document, overlay, facility)


def publish(store: PolicyStore, document: Document, source: str | None = None) -> PublishResult:
    """Publishes a validated document after checking it merges with what is current."""
    check_compatible(store, document, source)
    return store.publish(document)


def seed(target: PolicyStore, packaged: FilePolicyStore | None = None) -> dict[str, int]:
    """Publishes every packaged file into ``target`` (the local cloud does this at start).

    Idempotent: a version already there with the same content is left alone; a packaged
    version older than the table's current one is skipped.
    """
    packaged = packaged or FilePolicyStore()
    counts = {"published": 0, "unchanged": 0, "older": 0}
    files = list(packaged.files())
    files.sort(key=lambda f: f.facility_id is not None)  # enterprise policies first
    for f in files:
        doc = packaged.current(f.name, f.facility_id)
        if doc is None:
            continue
        try:
            counts[target.publish(doc)] += 1
        except StaleVersion:
            counts["older"] += 1
    return counts
