"""Post-procedure revenue cycle: on a surgical case's completion, the charges captured are
reviewed against what the case used (implants by lot and serial), the documentation
(operative note signed, implant log) and the coding are checked, the claim's dependencies
(the prior authorization's number, eligibility, no account holds) are met, and the claim
is handed to billing; what blocks it is a discharged-not-final-billed (DNFB) cause worked
in its own queue. Bill-only implants get their purchase order after use and, received at
use, its goods receipt of the usage."""
