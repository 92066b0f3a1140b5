"""Scheduled and one-off jobs: each ties a protocol adapter to the store."""
