"""Compound V3 (Comet): one market per contract, read through its public interface."""
