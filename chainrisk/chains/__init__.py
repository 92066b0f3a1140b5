"""Collateralization chains: the asset graph, look-through exposure across protocols, and contagion."""
