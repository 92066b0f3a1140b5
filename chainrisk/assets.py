"""Tokens and the links between them (a wrapper and what it is a claim on, at an exact exchange rate): the records
the asset graph is made of, shared by the readers that find links on chain and the models that follow them."""

from __future__ import annotations

from dataclasses import dataclass

#: Native ETH where a table's `asset` column needs an address (EIP-7528's, which wallets and aggregators use): it has
#: no ERC-20 balanceOf; a wallet's balance is eth_getBalance.
NATIVE_ETH = "0xeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"


@dataclass(frozen=True)
class Token:
    address: str
    symbol: str
    decimals: int


@dataclass(frozen=True)
class Link:
    """One edge: `rate_num` units of `underlying` per `rate_den` units of `asset`, at the block."""

    asset: Token
    kind: str  #: atoken, erc4626, lst
    underlying: Token
    rate_num: int
    rate_den: int
    #: ABI function (of `abi_name`) converting an exact amount on chain; None when balances are already underlying
    #: units (aTokens) or only a per-token rate exists (registry LSTs: floor(amount * rate / 1e18))
    convert: str | None
    abi_name: str  #: tokens/IERC4626, tokens/IWstETH, ... ('' for aTokens)
    detected_by: str  #: probe or registry
    pool: str | None = None  #: aToken: its Aave pool
    index_ray: int | None = None  #: aToken: the reserve's normalized income (liquidity index) at the block
    total_assets: int | None = None  #: ERC-4626: totalAssets()
    total_supply: int | None = None  #: ERC-4626: totalSupply()

    @property
    def rate(self) -> float:
        """Whole underlying tokens per whole asset token."""
        return float((self.rate_num / 10**self.underlying.decimals) / (self.rate_den / 10**self.asset.decimals))
