"""The workflow packages: one package per workflow (see docs/adding-a-workflow.md).

Each package holds its spec (``spec.py``: triggers, SLAs, KPIs, events, the input built
from the triggering event), its rules (pure logic), its steps (registered by name with
pydantic input and output models), its seed data and demo scenarios. The registry
(:mod:`careflow.kit.registry`) finds them here; nothing else names them.
"""
