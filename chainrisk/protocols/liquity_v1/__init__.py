"""Liquity V1: ETH-backed LUSD troves on one TroveManager, liquidated through the Stability Pool and, beyond it, by
redistribution to the other troves."""
