"""``python -m careflow.localcloud.moto.check``: each patch's shape check against the
moto installed in this interpreter, one line per patch (``ok`` or ``no longer applies:
<reason>``). Exits 1 when any patch no longer applies. Patches nothing. ``make
moto-check`` runs it against the newest moto on PyPI."""

from __future__ import annotations

import sys

from .patches import CheckResult, check_shapes
from .state import MOTO_VERSION


def table(results: list[CheckResult]) -> list[str]:
    width = max((len(r.patch.target) for r in results), default=0)
    concern = max((len(r.patch.concern) for r in results), default=0)
    return [
        f"{r.patch.concern:<{concern}}  {r.patch.target:<{width}}  "
        + ("ok" if r.ok else f"no longer applies: {r.problem}")
        for r in results
    ]


def main() -> int:
    import moto

    results = check_shapes()
    for line in table(results):
        print(line)
    failed = sum(not r.ok for r in results)
    print(
        f"moto {moto.__version__} (patches written for {MOTO_VERSION}): "
        f"{len(results) - failed} of {len(results)} patches apply"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
