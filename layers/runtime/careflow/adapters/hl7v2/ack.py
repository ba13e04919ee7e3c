"""Original-mode acknowledgements (ACK) in ER7."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Literal

from careflow.adapters.hl7v2.parse import DEFAULT_VERSION, Header

AckCode = Literal["AA", "AE", "AR"]


def escape(text: str, header: Header | None = None) -> str:
    """``text`` with the message's delimiters escaped (\\F\\, \\S\\, \\R\\, \\E\\, \\T\\)."""
    sep = header.field_separator if header else "|"
    enc = header.encoding if header else "^~\\&"
    comp, rep, esc, sub = enc[0], enc[1], enc[2], enc[3]
    out = text.replace(esc, f"{esc}E{esc}")
    for char, code in ((sep, "F"), (comp, "S"), (rep, "R"), (sub, "T")):
        out = out.replace(char, f"{esc}{code}{esc}")
    return out.replace("\r", " ").replace("\n", " ")


def build_ack(
    header: Header | None,
    code: AckCode,
    *,
    now: datetime,
    reason: str = "",
    where: str = "",
    hl7_error: str = "207",
    control_id: str | None = None,
) -> str:
    """MSH (version echoing MSH-12, ``ACK^<trigger>^ACK``, a fresh MSH-10) + MSA (+ ERR)."""
    head = header or Header()
    sep = head.field_separator
    comp = head.encoding[0]
    version = head.version or DEFAULT_VERSION
    stamp = now.astimezone(UTC).strftime("%Y%m%d%H%M%S") + "+0000"
    msh = sep.join(
        [
            "MSH",
            head.encoding,
            "careflow",
            "careflow",
            escape(head.sending_app, head),
            escape(head.sending_facility, head),
            stamp,
            "",
            comp.join(["ACK", head.trigger, "ACK"]) if head.trigger else "ACK",
            control_id or uuid.uuid4().hex[:20],
            "P",
            version,
        ]
    )
    text = escape(reason, head)
    msa = sep.join(["MSA", code, escape(head.control_id, head)] + ([text[:80]] if text else []))
    lines = [msh, msa]
    if code != "AA":
        severity = "E"
        if _before_25(version):
            # ERR-1 (ELD): segment^sequence^field^^code^text
            parts = [*where.split(comp), "", "", ""][:3]
            lines.append(sep.join(["ERR", comp.join([*parts, "", hl7_error, text])]))
        else:
            error_code = comp.join([hl7_error, text, "HL70357"])
            lines.append(sep.join(["ERR", "", where, error_code, severity, "", "", "", text]))
    return "\r".join(lines) + "\r"


def _before_25(version: str) -> bool:
    try:
        return tuple(int(p) for p in version.split(".")[:2]) < (2, 5)
    except ValueError:
        return False
