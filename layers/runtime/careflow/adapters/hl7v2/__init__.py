"""HL7 v2 inbound (ADT, SIU in ER7): parse, drop PHI at the door, map to careflow events.

``receive`` is what both transports call: the MLLP listener of the local cloud and
``POST /v1/hl7v2``. See docs/hl7v2.md.
"""

from careflow.adapters.hl7v2.parse import Hl7Message, Refused, parse
from careflow.adapters.hl7v2.receive import Receipt, receive

__all__ = ["Hl7Message", "Receipt", "Refused", "parse", "receive"]
