"""Morpho Blue: isolated markets on one singleton, shares-based positions, 1e36-scaled oracle prices."""
