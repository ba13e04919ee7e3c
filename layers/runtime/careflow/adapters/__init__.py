"""Adapters: ports implemented against AWS services, real protocols or sandboxes."""
