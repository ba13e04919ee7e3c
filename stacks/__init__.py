"""The CDK app: stacks built from the catalog (``careflow.catalog``)."""

import os as _os

# The machines run Node 20, which jsii now calls end-of-life; it still works, and the
# banner it prints on every synth buries real output. Upgrading Node is the real fix.
_os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
