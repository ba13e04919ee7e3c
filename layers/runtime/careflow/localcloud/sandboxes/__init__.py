"""Sandbox servers that speak the real protocols on loopback (local cloud only)."""
