"""The liquidation keeper: each step it liquidates every Aave account under health 1 (its largest collateral
against its largest debt) and every unhealthy Morpho borrower, and notes the healthy Morpho borrowers' health."""

from __future__ import annotations

from typing import Any

from chainrisk.abi import eth_call, load_abi
from chainrisk.devnet.population.base import PopulationBase
from chainrisk.devnet.population.plan import HF_ONE, KEEPER, MAX_UINT
from chainrisk.units import WAD


class Keeper(PopulationBase):
    """Liquidates what the chain lets it, as a keeper bot would."""

    def _liquidate_aave(self) -> None:
        unhealthy = [a for a, account in self.accounts.items() if account[5] < HF_ONE]
        if not unhealthy:
            return
        symbols = list(self.aave.reserves)
        calls = [
            eth_call(self.aave.data_provider, self.data_abi, "getUserReserveData", self._token(s), a)
            for a in unhealthy
            for s in symbols
        ]
        raw = self.rpc.batch(calls)
        for i, user in enumerate(unhealthy):
            best_collateral: tuple[str | None, float] = (None, 0.0)
            best_debt: tuple[str | None, float] = (None, 0.0)
            for j, symbol in enumerate(symbols):
                data = self.data_abi.decode("getUserReserveData", raw[i * len(symbols) + j])
                usd_per_unit = self.prices[symbol] / 10 ** self.specs[symbol].decimals
                if data[8] and data[0] * usd_per_unit > best_collateral[1]:
                    best_collateral = (symbol, data[0] * usd_per_unit)
                if data[2] * usd_per_unit > best_debt[1]:
                    best_debt = (symbol, data[2] * usd_per_unit)
            collateral, debt = best_collateral[0], best_debt[0]
            if collateral is None or debt is None:
                continue
            debt_units = int(best_debt[1] / (self.prices[debt] / 10 ** self.specs[debt].decimals))
            self._fund(KEEPER, debt, debt_units + 10)
            self._aave(
                KEEPER,
                "liquidationCall",
                self._token(collateral),
                self._token(debt),
                user,
                MAX_UINT,
                False,
                kind="liquidationCall",
            )

    def _liquidate_morpho(self) -> None:
        """Liquidates every unhealthy Morpho borrower, and notes each healthy one's (health, debt) for `_behave`."""
        self.morpho_health, self.morpho_closed = {}, {}
        borrowers = [
            (w.address, w.morpho_market)
            for w in self.wallets
            if w.morpho_market is not None and w.behaviour != "morpho_supplier"
        ]
        if not borrowers:
            return
        markets = self.morpho.markets
        oracle_abi = load_abi("morpho-blue", "IOracle")
        calls: list[tuple[str, list[Any]]] = []
        for market in markets:
            calls.append(eth_call(self.morpho.morpho, self.morpho_abi, "market", market.market_id))
            calls.append(eth_call(market.oracle, oracle_abi, "price"))
        for address, index in borrowers:
            calls.append(eth_call(self.morpho.morpho, self.morpho_abi, "position", markets[index].market_id, address))
        raw = self.rpc.batch(calls)
        state = [
            (self.morpho_abi.decode("market", raw[2 * k])[0], oracle_abi.decode("price", raw[2 * k + 1])[0])
            for k in range(len(markets))
        ]
        self.morpho_prices = [price for _, price in state]
        for (address, index), item in zip(borrowers, raw[2 * len(markets) :], strict=True):
            _, borrow_shares, collateral = self.morpho_abi.decode("position", item)[0]
            if borrow_shares == 0:
                self.morpho_closed[address] = collateral
                continue
            market_state, price = state[index]
            market = markets[index]
            total_borrow_assets, total_borrow_shares = market_state[2], market_state[3]
            # SharesMathLib.toAssetsUp with Morpho's virtual shares (1e6) and assets (1).
            borrowed = -(-borrow_shares * (total_borrow_assets + 1) // (total_borrow_shares + 10**6))
            max_borrow = collateral * price // 10**36 * market.lltv // WAD
            if borrowed <= max_borrow:
                self.morpho_health[address] = (max_borrow / borrowed, borrowed)
                continue
            incentive = min(1.15, 1 / (1 - 0.3 * (1 - market.lltv / WAD)))
            repay_for_all_collateral = collateral * price / 10**36 / incentive
            self._fund(KEEPER, market.loan_symbol, borrowed * 2 + 10)
            if repay_for_all_collateral > borrowed * 1.02:
                args: tuple[Any, ...] = (market.params, address, 0, borrow_shares, b"")
            else:
                args = (market.params, address, collateral, 0, b"")
            self._morpho(KEEPER, "liquidate", *args, kind="morpho_liquidate")
