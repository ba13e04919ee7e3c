"""The kit's own functions, used by the human-task macro of any workflow."""

from __future__ import annotations

from careflow.kit.spec import FunctionSpec, step_function

_STEPS = "careflow.kit.human_tasks"

CREATE_HUMAN_TASK = step_function(
    "CreateHumanTask",
    f"{_STEPS}:create_human_task",
    "Opens a human task with a task token",
)
ESCALATE_HUMAN_TASK = step_function(
    "EscalateHumanTask",
    f"{_STEPS}:escalate_human_task",
    "Escalates an overdue human task",
)
KIT_FUNCTIONS: tuple[FunctionSpec, ...] = (CREATE_HUMAN_TASK, ESCALATE_HUMAN_TASK)
