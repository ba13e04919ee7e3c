"""careflow's one canonical model: what adapters return, ports exchange, and workflows,
state, events and logs carry. The minimum of PHI: a patient is a reference plus
allow-listed identifiers.

- :mod:`~careflow.canonical.datatypes`: codes, identifiers, references, periods, amounts;
- :mod:`~careflow.canonical.identifiers`: the identifier allow-list (the one gate);
- :mod:`~careflow.canonical.records`: records read from FHIR R4 (EHR, payer, supply);
- :mod:`~careflow.canonical.cases`: the surgical case composite and its participants;
- :mod:`~careflow.canonical.payer`: prior authorization and eligibility;
- :mod:`~careflow.canonical.supply`: stock positions, requisitions, tray status;
- :mod:`~careflow.canonical.dependencies`: dependency results and outcomes.

Import from the module (nothing is re-exported here): a handler that needs a surgical
case does not pay for building the FHIR-derived records at cold start.
"""
