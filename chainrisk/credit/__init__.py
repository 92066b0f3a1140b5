"""On-chain credit scores: health history, features as of a cutoff block, an explainable scorecard, advice."""
