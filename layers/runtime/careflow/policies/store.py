"""Where policy versions live: the port, and the adapters that need no AWS.

- :class:`PolicyReader` / :class:`PolicyStore`: the port (Protocols).
- :class:`FilePolicyStore`: the repository's ``policies/`` directory, one version per
  file (the packaged default; what the local cloud seeds into its table). Read-only.
- :class:`MemoryPolicyStore`: every version in memory, same publish rules as DynamoDB
  (tests, fakes).
- :class:`LayeredPolicyStore`: a published store first, the packaged files behind it.

The DynamoDB adapter is :mod:`careflow.policies.store_dynamodb`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from careflow.policies.errors import (
    InvalidPolicy,
    PolicyError,
    Problem,
    StaleVersion,
    VersionConflict,
)
from careflow.policies.model import Document, document_hash, parse_document
from careflow.policies.versions import version_key

REPO_POLICIES = Path(__file__).resolve().parents[4] / "policies"
PublishResult = Literal["published", "unchanged"]


def default_policy_dir() -> Path:
    """``$CAREFLOW_POLICIES_DIR``, else the repository's ``policies/``."""
    return Path(os.environ.get("CAREFLOW_POLICIES_DIR") or REPO_POLICIES)


class PolicyReader(Protocol):
    def current(self, name: str, facility_id: str | None) -> Document | None:
        """The newest published version for the enterprise (None) or a facility."""
        ...

    def get(self, name: str, facility_id: str | None, version: str) -> Document | None: ...

    def history(self, name: str, facility_id: str | None) -> list[Document]:
        """Every version still held, oldest first."""
        ...

    def overlay_facilities(self, name: str) -> list[str]:
        """Facilities with an overlay of ``name``."""
        ...


class PolicyStore(PolicyReader, Protocol):
    def publish(self, document: Document) -> PublishResult:
        """Stores a new version and makes it current. The same version with the same
        content again is ``unchanged``; with other content :class:`VersionConflict`; a
        version not above the current one :class:`StaleVersion`."""
        ...


def check_publish(
    document: Document, same_version: Document | None, current: Document | None
) -> PublishResult | None:
    """The publish rules every store applies: None means "store it and make it current"."""
    if same_version is not None:
        if document_hash(same_version) == document_hash(document):
            return "unchanged"
        raise VersionConflict(
            f"{_label(document)} is already published with other content; "
            "versions are immutable: publish a new version"
        )
    if current is not None and version_key(document.version) <= version_key(current.version):
        raise StaleVersion(f"{_label(document)} is not above the current version {current.version}")
    return None


def _label(doc: Document) -> str:
    scope = f"{doc.facility_id} overlay" if doc.facility_id else "enterprise"
    return f"{doc.name} {scope} version {doc.version}"


# -- in memory ------------------------------------------------------------------------------
class MemoryPolicyStore:
    def __init__(self, *documents: Document) -> None:
        self._versions: dict[tuple[str, str | None], dict[str, Document]] = {}
        self._current: dict[tuple[str, str | None], str] = {}
        for doc in documents:
            self.publish(doc)

    def current(self, name: str, facility_id: str | None) -> Document | None:
        version = self._current.get((name, facility_id))
        return None if version is None else self._versions[(name, facility_id)][version]

    def get(self, name: str, facility_id: str | None, version: str) -> Document | None:
        return self._versions.get((name, facility_id), {}).get(version)

    def history(self, name: str, facility_id: str | None) -> list[Document]:
        docs = self._versions.get((name, facility_id), {}).values()
        return sorted(docs, key=lambda d: version_key(d.version))

    def overlay_facilities(self, name: str) -> list[str]:
        return sorted(f for (n, f) in self._versions if n == name and f is not None)

    def publish(self, document: Document) -> PublishResult:
        key = (document.name, document.facility_id)
        outcome = check_publish(document, self.get(*key, document.version), self.current(*key))
        if outcome is not None:
            return outcome
        self._versions.setdefault(key, {})[document.version] = document
        self._current[key] = document.version
        return "published"


# -- files ----------------------------------------------------------------------------------
def decode_json(raw: bytes, source: str) -> Any:
    """JSON from a file's bytes (UTF-8 with or without BOM, or UTF-16 with one: see
    :mod:`careflow.textfile`), refusing anything else with one problem."""
    from careflow.textfile import Unreadable, decode, parse_json

    try:
        return parse_json(decode(raw))
    except Unreadable as exc:
        raise InvalidPolicy([Problem(source, "", str(exc))]) from None


def read_policy_file(path: Path, source: str | None = None) -> Document:
    source = source or str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InvalidPolicy([Problem(source, "", f"cannot read: {exc.strerror}")]) from None
    return parse_document(decode_json(raw, source), source)


@dataclass(frozen=True)
class PolicyFile:
    path: Path
    name: str
    facility_id: str | None


class FilePolicyStore:
    """``<root>/enterprise/<name>.json`` and ``<root>/facilities/<facility>/<name>.json``."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or default_policy_dir()
        self._cache: dict[Path, tuple[tuple[int, int], Document]] = {}

    def path(self, name: str, facility_id: str | None) -> Path:
        if facility_id is None:
            return self.root / "enterprise" / f"{name}.json"
        return self.root / "facilities" / facility_id / f"{name}.json"

    def files(self) -> Iterator[PolicyFile]:
        for path in sorted((self.root / "enterprise").glob("*.json")):
            yield PolicyFile(path, path.stem, None)
        for path in sorted((self.root / "facilities").glob("*/*.json")):
            yield PolicyFile(path, path.stem, path.parent.name)

    def names(self) -> list[str]:
        return sorted({f.name for f in self.files() if f.facility_id is None})

    def current(self, name: str, facility_id: str | None) -> Document | None:
        path = self.path(name, facility_id)
        try:
            stat = path.stat()
        except OSError:
            return None
        stamp = (stat.st_mtime_ns, stat.st_size)
        cached = self._cache.get(path)
        if cached and cached[0] == stamp:
            return cached[1]
        doc = read_policy_file(path, self._source(path))
        if doc.name != name or doc.facility_id != facility_id:
            raise PolicyError(f"{self._source(path)} holds {doc.name} for {doc.facility_id}")
        self._cache[path] = (stamp, doc)
        return doc

    def _source(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root.parent))
        except ValueError:
            return str(path)

    def get(self, name: str, facility_id: str | None, version: str) -> Document | None:
        doc = self.current(name, facility_id)
        return doc if doc is not None and doc.version == version else None

    def history(self, name: str, facility_id: str | None) -> list[Document]:
        doc = self.current(name, facility_id)
        return [doc] if doc is not None else []

    def overlay_facilities(self, name: str) -> list[str]:
        return sorted(f.facility_id for f in self.files() if f.facility_id and f.name == name)


# -- published first, packaged behind --------------------------------------------------------
class LayeredPolicyStore:
    """Reads ``published`` first and falls back to ``packaged`` for a policy never published.

    A packaged version that is read as current is first published (idempotently) into
    ``published``, so an instance that pins it can load it after the package moves on.
    """

    def __init__(self, published: PolicyStore, packaged: PolicyReader) -> None:
        self.published = published
        self.packaged = packaged

    def current(self, name: str, facility_id: str | None) -> Document | None:
        doc = self.published.current(name, facility_id)
        if doc is not None:
            return doc
        doc = self.packaged.current(name, facility_id)
        if doc is not None:
            try:
                self.published.publish(doc)
            except StaleVersion:  # published meanwhile by someone else: theirs is current
                return self.published.current(name, facility_id)
        return doc

    def get(self, name: str, facility_id: str | None, version: str) -> Document | None:
        return self.published.get(name, facility_id, version) or self.packaged.get(
            name, facility_id, version
        )

    def history(self, name: str, facility_id: str | None) -> list[Document]:
        return self.published.history(name, facility_id) or self.packaged.history(name, facility_id)

    def overlay_facilities(self, name: str) -> list[str]:
        return sorted(
            set(self.published.overlay_facilities(name))
            | set(self.packaged.overlay_facilities(name))
        )

    def publish(self, document: Document) -> PublishResult:
        return self.published.publish(document)
