"""Domain events: the envelope of DESIGN.md and the data schema of each detail-type."""
