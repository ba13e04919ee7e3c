"""The partner API (``/v1``): its contract (:mod:`.contract`), shared by the handler and
the CDK app."""
