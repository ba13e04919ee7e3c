"""ER7 -> a typed, identifier-only message.

The ``hl7`` library splits the message on its own encoding characters (MSH-1, MSH-2);
this module picks the fields careflow uses and drops the rest at the door: names,
addresses, birth dates, SSNs (PID-19 and SS-typed PID-3 repetitions), next of kin,
phone numbers never leave :func:`parse`, not even in a refusal's reason.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

import hl7
from pydantic import BaseModel, ConfigDict

SUPPORTED_VERSIONS = frozenset(
    {"2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.7.1", "2.8", "2.8.1", "2.8.2"}
)
ADT_TRIGGERS = frozenset({"A01", "A02", "A03", "A04", "A08", "A11", "A13", "A16"})
SIU_TRIGGERS = frozenset({"S12", "S13", "S14", "S15"})
DEFAULT_VERSION = "2.5.1"

_SEGMENT_BREAK = re.compile(r"\r\n|\r|\n")
_DTM = re.compile(
    r"^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.(\d{1,4}))?(?:([+-])(\d{2})(\d{2}))?$"
)
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


class Refused(Exception):
    """The message cannot be taken. ``code`` is the MSA-1 (AR: rejected, AE: error);
    ``reason`` names fields and HL7 positions only, never a value from the message."""

    def __init__(
        self,
        code: Literal["AR", "AE"],
        reason: str,
        *,
        header: Header | None = None,
        where: str = "",
        hl7_error: str = "207",
    ) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.header = header
        self.where = where  # ERR-2, e.g. "PID^1^3"
        self.hl7_error = hl7_error  # HL7 table 0357


class Header(BaseModel):
    """What the ACK needs from MSH, read before anything else can fail."""

    model_config = ConfigDict(frozen=True)

    field_separator: str = "|"
    encoding: str = "^~\\&"
    sending_app: str = ""
    sending_facility: str = ""
    receiving_app: str = ""
    receiving_facility: str = ""
    control_id: str = ""
    version: str = DEFAULT_VERSION
    message_type: str = ""
    trigger: str = ""
    charset: str = ""


class Location(BaseModel):
    model_config = ConfigDict(frozen=True)

    unit: str | None = None
    room: str | None = None
    bed: str | None = None
    facility: str | None = None


class Hl7Message(BaseModel):
    """An ADT or SIU message as careflow keeps it: identifiers, codes, times; no PHI.

    Times without an offset are naive here: they are in the facility's time zone, which is
    known only once the facility is (see :mod:`careflow.adapters.hl7v2.mapping`)."""

    model_config = ConfigDict(frozen=True)

    header: Header
    sent_at: datetime | None = None  # MSH-7
    event_recorded_at: datetime | None = None  # EVN-2
    event_occurred_at: datetime | None = None  # EVN-6
    patient_id: str | None = None  # PID-3.1 (the MR-typed repetition when several)
    patient_id_authority: str | None = None  # PID-3.4
    patient_class: str | None = None  # PV1-2
    location: Location | None = None  # PV1-3
    prior_location: Location | None = None  # PV1-6
    visit_number: str | None = None  # PV1-19.1
    disposition: str | None = None  # PV1-36.1
    admitted_at: datetime | None = None  # PV1-44
    discharged_at: datetime | None = None  # PV1-45
    expected_discharge_at: datetime | None = None  # PV2-9
    placer_appointment_id: str | None = None  # SCH-1.1
    filler_appointment_id: str | None = None  # SCH-2.1
    appointment_start: datetime | None = None  # SCH-11.4 (< 2.7), TQ1-7, AIS-4
    filler_status: str | None = None  # SCH-25.1
    has_service: bool = False  # an AIS segment (a service is booked)
    appointment_location: Location | None = None  # AIL-3

    @property
    def kind(self) -> str:
        return f"{self.header.message_type}^{self.header.trigger}"


def decode(raw: bytes | str) -> str:
    """Bytes in MSH-18's character set when Python knows it, else UTF-8, else Latin-1."""
    if isinstance(raw, str):
        return raw.lstrip("\ufeff")
    text = raw.decode("latin-1")  # never fails: enough to read MSH-18
    charset = _msh18(text)
    for codec in (_codec(charset), "utf-8-sig"):
        if codec:
            try:
                return raw.decode(codec).lstrip("\ufeff")
            except (LookupError, UnicodeDecodeError):
                continue
    return text.lstrip("\ufeff").lstrip("ï»¿")


_CHARSETS = {
    "UNICODE UTF-8": "utf-8",
    "UTF-8": "utf-8",
    "8859/1": "latin-1",
    "ASCII": "ascii",
    "8859/15": "iso8859-15",
}


def _codec(charset: str) -> str | None:
    return _CHARSETS.get(charset.strip().upper()) if charset else None


def _msh18(text: str) -> str:
    start = text.find("MSH")
    if start < 0 or len(text) < start + 4:
        return ""
    first = _SEGMENT_BREAK.split(text[start:], maxsplit=1)[0]
    fields = first.split(first[3])
    return fields[17].split("^")[0] if len(fields) > 17 else ""


def segments(text: str) -> list[str]:
    """The message's segments, split on CR, LF or CRLF (stored files use LF), blank lines
    and trailing spaces dropped, anything before MSH ignored."""
    text = text.lstrip("\ufeff")
    start = text.find("MSH")
    if start < 0:
        return []
    return [s.rstrip() for s in _SEGMENT_BREAK.split(text[start:]) if s.strip()]


def header_of(segs: list[str]) -> Header:
    if not segs or not segs[0].startswith("MSH") or len(segs[0]) < 8:
        raise Refused("AR", "no MSH segment: an HL7 v2 message starts with MSH", hl7_error="100")
    msh = segs[0]
    sep, enc = msh[3], msh[4:8]
    if sep.isalnum() or len(set(sep + enc)) != 5 or any(c.isalnum() for c in enc):
        raise Refused(
            "AR",
            "MSH-1/MSH-2 are not valid encoding characters (expected |^~\\& or similar)",
            where="MSH^1^2",
            hl7_error="102",
        )
    fields = msh.split(sep)

    def at(n: int, comp: int = 1) -> str:
        # MSH-1 is the separator itself: MSH-n is fields[n - 1]
        value = fields[n - 1] if len(fields) > n - 1 else ""
        parts = value.split(enc[0])
        return parts[comp - 1].split(enc[3])[0] if len(parts) >= comp else ""

    return Header(
        field_separator=sep,
        encoding=enc,
        sending_app=at(3),
        sending_facility=at(4),
        receiving_app=at(5),
        receiving_facility=at(6),
        control_id=at(10),
        version=at(12) or DEFAULT_VERSION,
        message_type=at(9, 1),
        trigger=at(9, 2),
        charset=at(18),
    )


def parse_time(value: str) -> datetime | None:
    """An HL7 DTM/TS; aware when it carries an offset, naive otherwise. None if empty or
    not a time (a bad time is dropped, not fatal: the message is still taken)."""
    match = _DTM.match(value.strip()) if value else None
    if not match:
        return None
    year, month, day, hour, minute, second, frac, sign, oh, om = match.groups()
    try:
        when = datetime(
            int(year),
            int(month or 1),
            int(day or 1),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int((frac or "0").ljust(6, "0")[:6]),
        )
        if sign:
            offset = timedelta(hours=int(oh), minutes=int(om))
            when = when.replace(tzinfo=timezone(-offset if sign == "-" else offset))
    except ValueError:
        return None
    return when


def _safe(value: str) -> str | None:
    """A value kept only if it looks like an identifier or code; else dropped."""
    value = value.strip()
    return value if value and _SAFE_ID.match(value) else None


_LOCATION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._:,/#-]{0,63}$")


def _place(value: str) -> str | None:
    value = value.strip()
    return value if value and _LOCATION.match(value) else None


class _Reader:
    """Positional access to the parsed message that never raises on a missing field."""

    def __init__(self, message: hl7.Message) -> None:
        self.message = message

    def segment(self, name: str) -> hl7.Segment | None:
        for seg in self.message:
            if str(seg[0]) == name:
                return seg
        return None

    def has(self, name: str) -> bool:
        return self.segment(name) is not None

    def reps(self, name: str, field: int) -> list[hl7.Repetition]:
        seg = self.segment(name)
        if seg is None or len(seg) <= field:
            return []
        value = seg[field]
        if isinstance(value, hl7.Field):
            return [r for r in value if isinstance(r, hl7.Repetition)] or [value]
        return []

    @staticmethod
    def comp(rep: Any, component: int, sub: int = 1) -> str:
        """Component ``component`` (its sub-component ``sub``) of a repetition, or ""."""
        if isinstance(rep, str):
            return rep if component == 1 and sub == 1 else ""
        if len(rep) < component:
            return ""
        value = rep[component - 1]
        if isinstance(value, str):
            return value if sub == 1 else ""
        if len(value) < sub:
            return ""
        return str(value[sub - 1])

    def get(self, name: str, field: int, component: int = 1, sub: int = 1) -> str:
        reps = self.reps(name, field)
        return self.comp(reps[0], component, sub) if reps else ""

    def location(self, name: str, field: int) -> Location | None:
        reps = self.reps(name, field)
        if not reps:
            return None
        rep = reps[0]
        loc = Location(
            unit=_place(self.comp(rep, 1)),
            room=_place(self.comp(rep, 2)),
            bed=_place(self.comp(rep, 3)),
            facility=_place(self.comp(rep, 4)),
        )
        return loc if any((loc.unit, loc.room, loc.bed, loc.facility)) else None


def _patient(reader: _Reader) -> tuple[str | None, str | None]:
    """PID-3: the MR-typed repetition when there is one, else the first that is not an
    SSN. The authority is PID-3.4's namespace (HD.1), else its universal id (HD.2)."""
    reps = [r for r in reader.reps("PID", 3) if reader.comp(r, 1)]
    reps = [r for r in reps if reader.comp(r, 5).upper() != "SS"]
    if not reps:
        return None, None
    chosen = next((r for r in reps if reader.comp(r, 5).upper() == "MR"), reps[0])
    authority = reader.comp(chosen, 4, 1) or reader.comp(chosen, 4, 2)
    return _safe(reader.comp(chosen, 1)), _safe(authority)


def parse(raw: bytes | str) -> Hl7Message:
    """Parses one ER7 message; raises :class:`Refused` with the ACK code and a reason."""
    segs = segments(decode(raw))
    header = header_of(segs)
    if header.version not in SUPPORTED_VERSIONS:
        raise Refused(
            "AR",
            "unsupported HL7 version in MSH-12: careflow takes 2.3 to 2.8.2",
            header=header,
            where="MSH^1^12",
            hl7_error="203",
        )
    known = (header.message_type == "ADT" and header.trigger in ADT_TRIGGERS) or (
        header.message_type == "SIU" and header.trigger in SIU_TRIGGERS
    )
    if not known:
        raise Refused(
            "AR",
            "unsupported message type or trigger in MSH-9: careflow takes ADT "
            + "/".join(sorted(ADT_TRIGGERS))
            + " and SIU "
            + "/".join(sorted(SIU_TRIGGERS)),
            header=header,
            where="MSH^1^9",
            hl7_error="200" if header.message_type not in ("ADT", "SIU") else "201",
        )
    if not header.control_id:
        raise Refused(
            "AR",
            "no message control id in MSH-10",
            header=header,
            where="MSH^1^10",
            hl7_error="101",
        )
    try:
        reader = _Reader(hl7.parse("\r".join(segs)))
    except Exception:  # the library's errors are not typed: any is a malformed message
        raise Refused(
            "AR", "the message cannot be split into segments and fields", header=header
        ) from None
    patient_id, authority = _patient(reader)
    if header.message_type == "ADT" and not patient_id:
        raise Refused(
            "AE",
            "no patient identifier in PID-3 (PID-3.1; an SSN is not taken)",
            header=header,
            where="PID^1^3",
            hl7_error="101",
        )
    version_tuple = tuple(int(p) for p in header.version.split("."))
    sch_start = parse_time(reader.get("SCH", 11, 4)) if version_tuple < (2, 7) else None
    start = sch_start or parse_time(reader.get("TQ1", 7)) or parse_time(reader.get("AIS", 4))
    return Hl7Message(
        header=header,
        sent_at=parse_time(reader.get("MSH", 7)),
        event_recorded_at=parse_time(reader.get("EVN", 2)),
        event_occurred_at=parse_time(reader.get("EVN", 6)),
        patient_id=patient_id,
        patient_id_authority=authority,
        patient_class=_safe(reader.get("PV1", 2)),
        location=reader.location("PV1", 3),
        prior_location=reader.location("PV1", 6),
        visit_number=_safe(reader.get("PV1", 19)),
        disposition=_safe(reader.get("PV1", 36)),
        admitted_at=parse_time(reader.get("PV1", 44)),
        discharged_at=parse_time(reader.get("PV1", 45)),
        expected_discharge_at=parse_time(reader.get("PV2", 9)),
        placer_appointment_id=_safe(reader.get("SCH", 1)),
        filler_appointment_id=_safe(reader.get("SCH", 2)),
        appointment_start=start,
        filler_status=_safe(reader.get("SCH", 25)),
        has_service=reader.has("AIS"),
        appointment_location=reader.location("AIL", 3),
    )
