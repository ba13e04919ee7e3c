"""Bounded, audited predictions inside governed workflows.

A model is defined beside the workflow it serves (``ModelDef`` in the workflow's package,
named by its spec's ``models``); it learns from the workflows' own history (instances,
milestones, tasks and audit entries, as the state store keeps them) and ships as a JSON
artifact under ``artifacts/`` that :mod:`careflow.ml.linear` scores without numpy or
scikit-learn (scikit-learn trains it: ``careflow models train``). Steps reach a model
through the ``predictor`` port and decide through :mod:`careflow.ml.governance`: the
``ai-models`` policy says whether a model is on, off (the rules decide) or in shadow, and
the confidence below which a person decides; every prediction and every override is audited.
"""
