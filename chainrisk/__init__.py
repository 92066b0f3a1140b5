"""chainrisk: exact, cross-protocol risk analysis of on-chain lending positions."""

__version__ = "0.1.0"
