"""Protocol adapters: each package turns one lending protocol's contracts into normalised records."""
