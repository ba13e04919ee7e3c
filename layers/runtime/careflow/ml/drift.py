"""Population stability: how far recent inputs have moved from the training inputs.

The artifact keeps, per non-text feature, the training distribution: ten quantile bins for a
number, the share of each value for a category or a flag. ``psi`` compares recent inputs
with it (PSI = sum of (recent - train) * ln(recent / train) over the bins); the usual
reading is below 0.1 stable, 0.1-0.25 moved, above 0.25 shifted. The ``ai-models`` policy
sets the alarm line.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

_EPS = 1e-4
OTHER = "(other)"


def reference(defn: Any, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in defn.features:
        values = [r.get(f.name) for r in rows]
        if f.kind == "number":
            nums = sorted(float(v) for v in values if v is not None)
            if not nums:
                continue
            edges = sorted({nums[min(len(nums) - 1, (len(nums) * q) // 10)] for q in range(1, 10)})
            out[f.name] = {"edges": edges, "shares": _shares_numeric(edges, nums)}
        elif f.kind in ("category", "flag"):
            counts = Counter(str(v) for v in values)
            kept = {v: c for v, c in counts.items() if c / len(values) >= 0.01}
            other = len(values) - sum(kept.values())
            shares = {v: round(c / len(values), 6) for v, c in sorted(kept.items())}
            if other:
                shares[OTHER] = round(other / len(values), 6)
            out[f.name] = {"shares": shares}
    return out


def _shares_numeric(edges: Sequence[float], nums: Sequence[float]) -> list[float]:
    counts = [0] * (len(edges) + 1)
    for v in nums:
        counts[bisect.bisect_right(edges, v)] += 1
    return [round(c / len(nums), 6) for c in counts]


def psi(ref: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """PSI per feature of recent (checked) inputs against the artifact's reference."""
    out: dict[str, float] = {}
    for name, dist in ref.items():
        values = [r.get(name) for r in rows]
        if "edges" in dist:
            nums = [float(v) for v in values if v is not None]
            if not nums:
                continue
            recent = _shares_numeric(dist["edges"], nums)
            expected = dist["shares"]
        else:
            known = dist["shares"]
            counts = Counter(str(v) if str(v) in known else OTHER for v in values)
            keys = sorted(set(known) | set(counts))
            recent = [counts.get(k, 0) / len(values) for k in keys]
            expected = [known.get(k, 0.0) for k in keys]
        out[name] = round(
            sum(
                (max(a, _EPS) - max(e, _EPS)) * math.log(max(a, _EPS) / max(e, _EPS))
                for a, e in zip(recent, expected, strict=True)
            ),
            4,
        )
    return out
