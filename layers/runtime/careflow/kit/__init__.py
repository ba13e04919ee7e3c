"""The workflow kit: what every workflow package is made of.

- :mod:`careflow.kit.spec`: the spec a package declares (steps, triggers, SLAs, KPIs, events);
- :mod:`careflow.kit.steps`: steps registered by name, with pydantic input and output models;
- :mod:`careflow.kit.runtime`: the one entry point that runs a step with its ports injected;
- :mod:`careflow.kit.asl`: the one render function (macros, then placeholders) that the CDK
  app and the local cloud both use;
- :mod:`careflow.kit.kpis`: a workflow's own KPIs served by ``GET /v1/kpis`` (definitions,
  the function computing them, the percentile and ratio helpers);
- :mod:`careflow.kit.registry`: the workflow packages, discovered under ``careflow.workflows``.

Nothing here imports a workflow by name; importing this package imports nothing else.
"""
