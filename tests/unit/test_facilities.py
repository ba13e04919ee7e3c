"""The facility registry: built in, or from a deployment's file."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from careflow import facilities as fac


@pytest.fixture(autouse=True)
def _fresh_registry():
    fac._registry.cache_clear()
    yield
    fac._registry.cache_clear()


def test_the_built_in_facilities_and_their_local_time():
    north = fac.facility("fac-north")
    assert north is not None and north.name == "North Valley Medical Center"
    assert fac.is_known("fac-south") and not fac.is_known("fac-nowhere")
    local = north.local(datetime(2026, 7, 1, 12, 0, tzinfo=UTC))
    assert (local.hour, local.utcoffset().total_seconds()) == (7, -5 * 3600)  # CDT


def test_a_deployment_names_its_own_facilities(tmp_path, monkeypatch):
    path = tmp_path / "facilities.json"
    path.write_bytes(
        b"\xef\xbb\xbf"  # a BOM, as editors on Windows write it
        + json.dumps([{"id": "h1", "name": "H One", "time_zone": "Europe/Berlin"}]).encode()
    )
    monkeypatch.setenv(fac.FACILITIES_FILE_ENV, str(path))
    assert list(fac.facilities()) == ["h1"]
    assert not fac.is_known("fac-north")


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"[{]", "is not JSON"),
        ("[]".encode("utf-16"), "is not UTF-8"),
        (b'[{"id": "h1", "name": "H", "time_zone": "Mars/Base"}]', "not an IANA time zone"),
        (
            b'[{"id": "h1", "name": "H", "time_zone": "UTC"},'
            b' {"id": "h1", "name": "H", "time_zone": "UTC"}]',
            "names a facility twice",
        ),
    ],
)
def test_a_bad_facilities_file_is_one_clear_line(tmp_path, monkeypatch, content, says):
    path = tmp_path / "facilities.json"
    path.write_bytes(content)
    monkeypatch.setenv(fac.FACILITIES_FILE_ENV, str(path))
    with pytest.raises(fac.FacilitiesFileError, match=says):
        fac.facilities()


def test_a_missing_facilities_file_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv(fac.FACILITIES_FILE_ENV, str(tmp_path / "nope.json"))
    with pytest.raises(fac.FacilitiesFileError, match="cannot read"):
        fac.facilities()
