"""Procurement approval across facilities: a requisition from any facility of the group,
its lines normalized to the canonical item (whatever the facility's item master calls it),
approved level by level as the facility's policy routes its amount (capital to capital
review), its cost center's budget reserved in the ERP, the purchase order created and the
requisition's status sent back to the facility."""
