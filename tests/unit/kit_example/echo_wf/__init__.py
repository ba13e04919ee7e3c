"""A one-step workflow: it records that it ran and answers its subject back."""
