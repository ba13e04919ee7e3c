"""The one entry point of every step function.

The function's configuration names its step (``CAREFLOW_STEP="<module>:<name>"``); only
that step's module is imported. The step's input model parses the event, its ports are
injected, its output model is returned as JSON.
"""

import os
from typing import Any

from careflow.kit.runtime import invoke
from careflow.observability import step as observed

STEP = os.environ.get("CAREFLOW_STEP", "")


@observed(STEP.rpartition(":")[2] or "step")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if not STEP:
        raise RuntimeError("CAREFLOW_STEP is not set: the function does not name its step")
    return invoke(STEP, event)
