"""The local cloud: what AWS runs in production, on one machine (never shipped to Lambda)."""
