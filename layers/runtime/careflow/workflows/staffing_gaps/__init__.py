"""Staffing gap detection: census and acuity (from ADT), and the OR schedule for PACU,
against the roster of each unit's upcoming shift; a gap goes to the staffing coordinator
with the options the workforce system offers (float pool, agency, overtime, flex census),
and the decision goes back to the workforce system."""
