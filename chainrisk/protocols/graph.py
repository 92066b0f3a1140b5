"""The asset graph read on chain at a block: which assets wrap or claim which other asset, at what exact rate.

Each round probes the assets found so far: every protocol adapter for its own wrappers first (`Adapter.wrapper_links`,
such as Aave's aTokens), then the token standards every protocol meets (chainrisk.protocols.tokens: ERC-4626 vaults,
liquid-staking tokens). The underlyings found are probed in the next round. Each link knows how to convert an exact
amount on chain (`convert_exact`), so look-through amounts are the contracts' own.
"""

from __future__ import annotations

from chainrisk.abi import eth_call
from chainrisk.assets import Link
from chainrisk.protocols.adapter import adapters
from chainrisk.protocols.tokens import (
    CONVERTERS,
    REGISTRY,
    STANDARD_PROBES,
    KnownWrapper,
    standard_links,
    standard_probe_calls,
    word_uint,
)
from chainrisk.rpc import RpcClient
from chainrisk.units import ZERO_ADDRESS

#: Wrappers of wrappers deeper than this are not followed (no real chain is this long; a cycle would be).
MAX_DEPTH = 6


def discover_links(
    rpc: RpcClient, chain_id: int, assets: list[str], block: int, registry: tuple[KnownWrapper, ...] = REGISTRY
) -> dict[str, Link]:
    """Every link reachable from `assets` (their underlyings are probed in turn), by wrapper address."""
    probes = [adapter for _, adapter in sorted(adapters().items())]
    links: dict[str, Link] = {}
    seen: set[str] = set()
    frontier = sorted({a.lower() for a in assets} - {ZERO_ADDRESS})
    for _ in range(MAX_DEPTH):
        frontier = [a for a in frontier if a not in seen]
        if not frontier:
            break
        seen.update(frontier)
        # Every protocol's probes and the standards' of the round's assets in one round trip; an asset is the first
        # prober's that links it (each adapter's in name order, then the standards).
        asked = [adapter.wrapper_probes(frontier, block) for adapter in probes]
        standard = standard_probe_calls(frontier, block)
        answers = rpc.batch_each([call for calls in (*asked, standard) for call in calls])
        found: dict[str, Link] = {}
        at = 0
        for adapter, calls in zip(probes, asked, strict=True):
            if calls:
                theirs = adapter.wrapper_links(rpc, chain_id, frontier, block, answers[at : at + len(calls)])
                at += len(calls)
            else:  # an adapter that sends no probes of its own may take no `probed` (written before it existed)
                theirs = adapter.wrapper_links(rpc, chain_id, frontier, block)
            found.update({asset: link for asset, link in theirs.items() if asset not in found})
        # The standards read on (metadata, rates) only the assets no protocol linked, as when they were probed apart.
        width = len(STANDARD_PROBES)
        rest = [k for k, asset in enumerate(frontier) if asset not in found]
        probed = [answer for k in rest for answer in answers[at + width * k : at + width * (k + 1)]]
        found.update(standard_links(rpc, chain_id, [frontier[k] for k in rest], block, registry, probed))
        if not found:
            break
        links.update(found)
        frontier = sorted({link.underlying.address for link in links.values()})
    return links


def convert_exact(
    rpc: RpcClient, links: dict[str, Link], pieces: list[tuple[str, int]], block: int
) -> dict[tuple[str, int], int]:
    """Underlying amount of each (wrapper, amount), as the wrapper's own conversion answers at `block`; links without a
    conversion call (aTokens 1:1, registry LSTs) and conversions that revert use floor(amount x rate)."""
    tag = hex(block)
    wanted = sorted({p for p in pieces if p[1] > 0 and links[p[0]].convert is not None})
    raw = rpc.batch_each(
        [eth_call(a, CONVERTERS[links[a].abi_name], str(links[a].convert), amount, block=tag) for a, amount in wanted]
    )
    out: dict[tuple[str, int], int] = {}
    exact = dict(zip(wanted, raw, strict=True))
    for asset, amount in pieces:
        link = links[asset]
        value = word_uint(exact.get((asset, amount)))
        out[(asset, amount)] = value if value is not None else amount * link.rate_num // link.rate_den
    return out
