"""The suite runs from a clone with nothing beside it, on documents kept as their authors
wrote them."""

import hashlib
import re
from pathlib import Path

from tests import fixtures

TESTS = Path(__file__).resolve().parents[1]
OUTSIDE = re.compile(r"parents\[\d\]\.parent|\.\./shared|\"shared\" /")


def test_no_test_reads_outside_the_repository():
    offenders = [
        str(path.relative_to(TESTS))
        for path in TESTS.rglob("*.py")
        if path.name != Path(__file__).name and OUTSIDE.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_every_fixture_is_byte_for_byte_the_copy_recorded_with_its_source():
    listed = {}
    for line in (fixtures.FIXTURES / "SHA256SUMS").read_text(encoding="ascii").splitlines():
        digest, name = line.split(maxsplit=1)
        listed[name] = digest
    on_disk = {
        str(p.relative_to(fixtures.FIXTURES))
        for folder in (fixtures.FHIR_R4, fixtures.DAVINCI_PAS, fixtures.HL7V2)
        for p in folder.rglob("*")
        if p.is_file()
    }
    assert on_disk == set(listed)
    changed = [
        name
        for name, digest in listed.items()
        if hashlib.sha256((fixtures.FIXTURES / name).read_bytes()).hexdigest() != digest
    ]
    assert changed == []


def test_each_fixture_folder_keeps_its_source_and_licence_note():
    note = (fixtures.FIXTURES / "SOURCE.md").read_text(encoding="utf-8")
    for folder, licence in (("fhir-r4", "CC0"), ("hl7v2", "MIT"), ("davinci-pas", "Apache-2.0")):
        assert folder in note and licence in note
    assert (fixtures.HL7V2 / "LICENSE-FHIR-Converter").is_file()
