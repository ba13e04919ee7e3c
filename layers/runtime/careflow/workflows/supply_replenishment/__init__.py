"""Supply replenishment: per facility, daily and after schedule changes, the demand of the
booked cases' preference cards and the usage history against each location's on-hand, par
and reorder point; a stockout risk per item, location and day; requisitions approved by
policy (amount and item class), expedites for booked cases at risk, and ``Supply.AtRisk``
for surgical case readiness."""
