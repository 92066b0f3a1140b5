"""One asset graph for every model: how a price move on base assets reaches the wrappers built on them (pure).

A wrapper's oracle price is its underlying's price times its exchange rate (an aToken 1:1, an ERC-4626 share at
convertToAssets, wstETH at stEthPerToken), as the devnet's RateFeed and real wrapped-asset oracles compute it. So a
wrapper's price multiplier is its underlying's multiplier times its exchange rate's own factor (rate after / rate at
the snapshot; 1 where a model holds rates, as every model but contagion does), times any move named for the wrapper
itself (a depeg of the wrapper against its base). Stress replays, VaR, the cascade, optimisation's sensitivity,
parameter advice and contagion all move wrapped collateral through `AssetGraph.multipliers` (or, for the models that
draw moves per price series, `AssetGraph.base`, which picks the series of the base a wrapper rests on).

Keys are symbols for the models that reprice through the engine (which shocks by symbol) and addresses for contagion,
which follows the stored graph address by address; `AssetGraph.from_links` builds either.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import polars as pl

from chainrisk.assets import Link
from chainrisk.chains.graph import links_from_frame


@dataclass(frozen=True)
class AssetGraph:
    """Wrappers and what each is a claim on (one hop), by symbol or by address; empty: no wrapper is known."""

    underlying: Mapping[str, str] = field(default_factory=dict)  #: wrapper -> its underlying (one hop)

    @classmethod
    def from_links(cls, links: Mapping[str, Link], by: Literal["symbol", "address"] = "symbol") -> AssetGraph:
        """The graph of `links` (chainrisk.chains.graph's Links, keyed by wrapper address)."""
        if by == "address":
            return cls({address: link.underlying.address for address, link in links.items()})
        return cls({link.asset.symbol: link.underlying.symbol for link in links.values()})

    @classmethod
    def from_frame(cls, asset_links: pl.DataFrame) -> AssetGraph:
        """By symbol, from stored `asset_links` rows (every chain's: the engine prices by symbol across chains)."""
        return cls.from_links(links_from_frame(asset_links))

    def base(self, key: str) -> str:
        """What `key` is ultimately a claim on (itself when it wraps nothing). A cycle stops after one pass."""
        for _ in range(len(self.underlying) + 1):
            parent = self.underlying.get(key)
            if parent is None:
                return key
            key = parent
        return key

    def bases(self, keys: Iterable[str]) -> dict[str, str]:
        """key -> its base, for every one of `keys`."""
        return {key: self.base(key) for key in keys}

    def nodes(self, keys: Iterable[str] = ()) -> set[str]:
        """`keys` with every wrapper and underlying of the graph."""
        return set(keys) | set(self.underlying) | set(self.underlying.values())

    def multipliers(
        self, moves: Mapping[str, float], keys: Iterable[str] = (), factors: Mapping[str, float] | None = None
    ) -> dict[str, float]:
        """Price multiplier of every key of `keys` and of the graph: `moves` of a key that wraps nothing (1 when not
        named); a wrapper's underlying multiplier times its `factors` entry (its exchange rate over the snapshot's,
        default 1) times `moves` of the wrapper itself (default 1)."""
        rates = factors or {}
        out: dict[str, float] = {}

        def of(key: str, depth: int) -> float:
            if key in out:
                return out[key]
            parent = self.underlying.get(key)
            own = float(moves.get(key, 1.0))
            # A cycle in a malformed graph ends at its first repeat: the key is then priced as a base.
            value = own if parent is None or depth > len(self.underlying) else of(parent, depth + 1) * own
            value *= rates.get(key, 1.0) if parent is not None else 1.0
            out[key] = value
            return value

        for key in sorted(self.nodes(keys) | set(moves)):
            of(key, 0)
        return out

    def multiplier_frame(self, moves: Mapping[str, float], symbols: Iterable[str]) -> pl.DataFrame:
        """(symbol, multiplier) for the engine's reprice/stress: every one of `symbols` moved through the graph."""
        wanted = sorted(set(symbols))
        values = self.multipliers(moves, wanted)
        return pl.DataFrame(
            {"symbol": wanted, "multiplier": [values[s] for s in wanted]},
            schema={"symbol": pl.Utf8, "multiplier": pl.Float64},
        )
