"""A deployment's list file (facilities, actors): a JSON list of one model, read once.

Each problem is one line naming the environment variable, the file and, for an entry, where
in it: the registries that read such a file raise it as their own error type.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

M = TypeVar("M", bound=BaseModel)


def read_list(
    path: str,
    model: type[M],
    *,
    env: str,
    error: type[ValueError],
    key: Callable[[M], str],
    noun: str,
) -> list[M]:
    """The entries of ``path`` (UTF-8, a BOM allowed), each ``key`` at most once."""
    try:
        text = Path(path).read_bytes().decode("utf-8-sig")
        items = TypeAdapter(list[model]).validate_python(json.loads(text))  # type: ignore[valid-type]
    except OSError as exc:
        raise error(f"{env}: cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise error(f"{env}: {path} is not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise error(f"{env}: {path} is not JSON (line {exc.lineno})") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise error(f"{env}: {path}: entry {where}: {first['msg']}") from None
    keys = [key(item) for item in items]
    if len(set(keys)) != len(keys):
        raise error(f"{env}: {path} names {noun} twice")
    return items
