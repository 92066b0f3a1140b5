"""Local Ethereum devnet: anvil running the real Aave V3 and Morpho Blue bytecode with a replayed market."""
