"""Reading the files people hand to ``careflow``: text as editors save it.

UTF-8 with or without a byte order mark, and UTF-16 with one (what Windows tools such as
PowerShell's ``>`` write), are read; anything else is refused with one line saying why.
"""

from __future__ import annotations

import codecs
import json
from pathlib import Path
from typing import Any


class Unreadable(ValueError):
    """A file cannot be read as text or JSON; the message is the one line that says why."""


def decode(raw: bytes) -> str:
    """The text of a file's bytes: UTF-8 (with or without BOM) or UTF-16 with a BOM."""
    if raw.startswith(codecs.BOM_UTF8):
        encoding, body = "utf-8", raw[len(codecs.BOM_UTF8) :]
    elif raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding, body = "utf-16", raw
    else:
        encoding, body = "utf-8", raw
    try:
        return body.decode(encoding)
    except UnicodeDecodeError as exc:
        offset = exc.start + (len(raw) - len(body))
        if encoding == "utf-16":
            raise Unreadable(f"not UTF-16 despite its byte order mark (offset {offset})") from None
        raise Unreadable(
            f"not UTF-8: byte 0x{raw[offset]:02x} at offset {offset} "
            "(save it as UTF-8, or UTF-16 with a byte order mark)"
        ) from None


def parse_json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise Unreadable(f"not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    except RecursionError:
        raise Unreadable("not JSON: nested too deeply") from None


def read_bytes(path: str | Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise Unreadable(f"cannot read: {exc.strerror or exc}") from None


def read_text(path: str | Path) -> str:
    return decode(read_bytes(path))


def read_json(path: str | Path) -> Any:
    return parse_json(read_text(path))
