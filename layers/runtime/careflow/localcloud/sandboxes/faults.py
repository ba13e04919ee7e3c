"""Switchable faults for a sandbox server: latency, 5xx, 429 with Retry-After, timeouts and
malformed bodies, each for the next N requests (or every request)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field


@dataclass
class FaultPlan:
    latency_s: float = 0.0
    server_errors: int = 0  # next N requests answer 503
    rate_limits: int = 0  # next N requests answer 429
    retry_after_s: int = 1
    timeouts: int = 0  # next N requests stall for ``stall_s`` before answering
    stall_s: float = 10.0
    malformed: int = 0  # next N requests answer a body that is not JSON
    always_down: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def clear(self) -> None:
        with self._lock:
            self.latency_s = 0.0
            self.server_errors = self.rate_limits = self.timeouts = self.malformed = 0
            self.always_down = False

    def next(self) -> str | None:
        """The fault for this request: ``503``, ``429``, ``stall``, ``malformed`` or None."""
        if self.latency_s:
            time.sleep(self.latency_s)
        with self._lock:
            if self.always_down:
                return "503"
            for name, kind in (
                ("server_errors", "503"),
                ("rate_limits", "429"),
                ("timeouts", "stall"),
                ("malformed", "malformed"),
            ):
                if getattr(self, name) > 0:
                    setattr(self, name, getattr(self, name) - 1)
                    return kind
        return None
