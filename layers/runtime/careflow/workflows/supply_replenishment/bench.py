"""``make bench``'s case (careflow.kit.bench): South Bay's review on a quiet morning (the
demo's rr-south-1): every shelf above its reorder point, no booked case short → no action."""

from __future__ import annotations

from typing import Any

from careflow.kit.bench import start_target


def case(cloud: Any, key: str) -> dict[str, Any]:
    return start_target(
        "supply-replenishment",
        "careflow.erp",
        "ReplenishmentReview.Due",
        facility_id="fac-south",
        key=key,
        now=cloud.clock.now(),
        data={},
    )
