"""Invoice exception handling: a supplier invoice received from the ERP is three-way matched
(purchase order, goods receipt, invoice) within the policy's tolerances; a match is approved
for payment in the ERP, an exception is routed to its AP queue by cause, escalated as it
ages, and resolved by AP (accept the variance, request a credit memo, return), the decision
recorded in the ERP."""
