"""Maker/Sky vaults (urns): every ilk and urn of a Maker deployment, found from its ChainLog."""
