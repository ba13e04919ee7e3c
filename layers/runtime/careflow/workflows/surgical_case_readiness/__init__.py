"""Surgical case readiness: is everything a booked procedure needs in place before the day?

``spec.py`` (what the registry reads), ``events.py`` (the data of the events it consumes),
``rules.py`` (pure logic), ``steps.py`` (the state machine's steps),
``demo.py`` (its scenarios); its ASL is ``statemachines/surgical_case_readiness.asl.json``.
"""
