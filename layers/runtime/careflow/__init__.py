"""careflow: the shared runtime library (shipped as a Lambda layer)."""

__version__ = "0.1.0"
