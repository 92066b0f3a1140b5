"""Opening the positions: liquidity first, then each wallet's supply, deposits, posted wrappers, borrows, loops."""

from __future__ import annotations

from collections import defaultdict

from chainrisk.abi import eth_call, keccak
from chainrisk.devnet.aave import EMODE_CATEGORY
from chainrisk.devnet.morpho import ATOKEN_COLLATERAL, MorphoMarket, market_index
from chainrisk.devnet.population.base import PopulationBase
from chainrisk.devnet.population.plan import ACTION_DELAY_S, KEEPER, SWAP_SINK, VAULT_UTILISATION, Wallet
from chainrisk.devnet.wrappers import LST, VAULT
from chainrisk.units import WAD


class Opening(PopulationBase):
    """Opens every planned position (three blocks, liquidity first)."""

    def open_positions(self) -> None:
        """Funds and approves; supplies and deposits; then posts wrapped collateral, borrows and loops: three
        blocks (more where one passes MAX_TXS_PER_BLOCK; each wallet's transactions stay in order), liquidity
        providers first."""
        pool, morpho = self.aave.pool, self.morpho.morpho
        vault_index = market_index(self.morpho.markets, VAULT.collateral, VAULT.loan)
        self._size_vault_market_demand(vault_index)
        for symbol in self.specs:
            self._approve(KEEPER, self._token(symbol), pool)
            self._approve(KEEPER, self._token(symbol), morpho)
        aave_borrow_usd: defaultdict[str, float] = defaultdict(float)
        morpho_borrow_usd: defaultdict[int, float] = defaultdict(float)
        vault_deposits_usd = 0.0
        for w in self.wallets:
            self._fund_opening(w)
            if w.debt_symbol:
                aave_borrow_usd[w.debt_symbol] += self._planned_aave_debt(w)
            if w.morpho_market is not None and w.behaviour != "morpho_supplier":
                morpho_borrow_usd[w.morpho_market] += self._morpho_borrow_usd(w)
            if w.behaviour in ("vault_depositor", "vault_borrower"):
                vault_deposits_usd += w.size_usd
        # Liquidity providers so that borrowing never outruns supply: utilisation near 75-80 %. The vault's
        # market is supplied through the vault, so that the vault is its main supplier and the market's bad
        # debt reaches the share price; its provider tops up what the wallets deposited.
        aave_lps = {
            symbol: ("0x" + keccak(f"lp:aave:{symbol}".encode())[-20:].hex(), self._units(symbol, usd / 0.75))
            for symbol, usd in aave_borrow_usd.items()
        }
        morpho_lps = {}
        for index, usd in morpho_borrow_usd.items():
            lp_usd = usd / 0.8 - (vault_deposits_usd if index == vault_index else 0.0)
            if lp_usd > 0:
                loan = self.morpho.markets[index].loan_symbol
                morpho_lps[index] = (
                    "0x" + keccak(f"lp:morpho:{index}".encode())[-20:].hex(),
                    self._units(loan, lp_usd),
                )
        for symbol, (lp, units) in aave_lps.items():
            self._fund(lp, symbol, units)
            self._approve(lp, self._token(symbol), pool)
        for index, (lp, units) in morpho_lps.items():
            loan = self.morpho.markets[index].loan_symbol
            self._fund(lp, loan, units)
            self._approve(lp, self._token(loan), self.vault.token if index == vault_index else morpho)
        self.builder.mine(ACTION_DELAY_S)

        for symbol, (lp, units) in aave_lps.items():
            self.builder.call(lp, self.pool_abi, pool, "supply", self._token(symbol), units, lp, 0)
        for index, (lp, units) in morpho_lps.items():
            if index == vault_index:
                self.builder.call(lp, self.vault_abi, self.vault.token, "deposit", units, lp)
            else:
                params = self.morpho.markets[index].params
                self.builder.call(lp, self.morpho_abi, morpho, "supply", params, units, 0, lp, b"")
        for w in self.wallets:
            self._supply_opening(w)
        self._mine_actions()

        shares = self._vault_shares([w.address for w in self.wallets if w.behaviour == "vault_borrower"])
        for w in self.wallets:
            self._borrow_opening(w, shares.get(w.address, 0))
        self._mine_actions()

    def _size_vault_market_demand(self, vault_index: int) -> None:
        """Scales the vault market's Morpho borrowers up (health targets kept) until they borrow VAULT_UTILISATION
        of what the wallets deposit in the vault: the deposits come whatever the market's demand, and a vault
        that lends little of them would hardly feel its market's bad debt. On mainnet Morpho's AdaptiveCurveIrm
        moves rates until a market sits near its 90 % target utilisation, to the same effect."""
        deposits = sum(w.size_usd for w in self.wallets if w.behaviour in ("vault_depositor", "vault_borrower"))
        demand = [w for w in self.wallets if w.behaviour == "morpho_borrower" and w.morpho_market == vault_index]
        borrowed = sum(self._morpho_borrow_usd(w) for w in demand)
        if demand and borrowed < VAULT_UTILISATION * deposits:
            scale = VAULT_UTILISATION * deposits / borrowed
            for w in demand:
                w.size_usd *= scale

    def _fund_opening(self, w: Wallet) -> None:
        pool, morpho, vault = self.aave.pool, self.morpho.morpho, self.vault.token
        for symbol, usd in w.collateral.items():
            self._fund(w.address, symbol, self._units(symbol, usd))
            self._approve(w.address, self._token(symbol), pool)
        if w.debt_symbol:
            self._approve(w.address, self._token(w.debt_symbol), pool)
        if w.behaviour in ("vault_depositor", "vault_borrower"):
            self._fund(w.address, VAULT.loan, self._units(VAULT.loan, w.size_usd))
            self._approve(w.address, self._token(VAULT.loan), vault)
        if w.morpho_market is None:
            return
        market = self.morpho.markets[w.morpho_market]
        self._approve(w.address, market.loan_token, morpho)
        if w.behaviour == "morpho_supplier":
            self._fund(w.address, market.loan_symbol, self._units(market.loan_symbol, w.size_usd))
            return
        self._approve(w.address, market.collateral_token, morpho)
        if w.behaviour == "vault_borrower":
            return
        if w.behaviour in ("atoken_borrower", "cross_looper"):
            underlying = ATOKEN_COLLATERAL[market.collateral_symbol]
            self._fund(w.address, underlying, self._units(underlying, w.size_usd))
            self._approve(w.address, self._token(underlying), pool)
            if w.behaviour == "cross_looper":
                self._approve(w.address, market.loan_token, pool)
        else:
            usd = self._morpho_collateral_usd(w)
            self._fund(w.address, market.collateral_symbol, self._units(market.collateral_symbol, usd))

    def _supply_opening(self, w: Wallet) -> None:
        if w.behaviour == "aave_emode_looper":
            self._aave(w.address, "setUserEMode", EMODE_CATEGORY[0], kind="setUserEMode")
        for symbol, usd in w.collateral.items():
            units = self._units(symbol, usd)
            self._aave(w.address, "supply", self._token(symbol), units, w.address, 0, kind="supply")
        if w.behaviour == "aave_isolated":
            # Aave 3.0.2 never enables an isolated asset as collateral on supply
            # (ValidationLogic.validateAutomaticUseAsCollateral); the wallet opts in.
            self._aave(w.address, "setUserUseReserveAsCollateral", self._token("LINK"), True, kind="enter_isolation")
        if w.behaviour in ("vault_depositor", "vault_borrower"):
            units = self._units(VAULT.loan, w.size_usd)
            self._act(w.address, self.vault_abi, self.vault.token, "deposit", units, w.address, kind="vault_deposit")
        if w.morpho_market is None:
            return
        market = self.morpho.markets[w.morpho_market]
        if w.behaviour == "morpho_supplier":
            units = self._units(market.loan_symbol, w.size_usd)
            self._morpho(w.address, "supply", market.params, units, 0, w.address, b"", kind="morpho_supply")
        elif w.behaviour in ("atoken_borrower", "cross_looper"):
            underlying = ATOKEN_COLLATERAL[market.collateral_symbol]
            units = self._units(underlying, w.size_usd)
            self._aave(w.address, "supply", self._token(underlying), units, w.address, 0, kind="supply")
        elif w.behaviour != "vault_borrower":
            units = self._units(market.collateral_symbol, self._morpho_collateral_usd(w))
            self._morpho(
                w.address, "supplyCollateral", market.params, units, w.address, b"", kind="morpho_supplyCollateral"
            )

    def _vault_shares(self, holders: list[str]) -> dict[str, int]:
        raw = self.rpc.batch([eth_call(self.vault.token, self.erc20, "balanceOf", a) for a in holders])
        return {a: int(self.erc20.decode("balanceOf", r)[0]) for a, r in zip(holders, raw, strict=True)}

    def _borrow_opening(self, w: Wallet, vault_shares: int) -> None:
        if w.behaviour == "aave_emode_looper":
            self._loop(w)
        elif w.debt_symbol and w.behaviour != "cross_looper":
            units = self._units(w.debt_symbol, self._planned_aave_debt(w))
            self._aave(w.address, "borrow", self._token(w.debt_symbol), units, 2, 0, w.address, kind="borrow")
        if w.morpho_market is None or w.behaviour == "morpho_supplier":
            return
        market = self.morpho.markets[w.morpho_market]
        if w.behaviour in ("atoken_borrower", "cross_looper"):
            # The aTokens the wallet got less one unit: Aave's index rounding can leave the balance a unit short.
            posted = self._units(ATOKEN_COLLATERAL[market.collateral_symbol], w.size_usd) - 1
            self._post(w, market, posted)
        elif w.behaviour == "vault_borrower":
            self._post(w, market, vault_shares)
        loan_units = self._units(market.loan_symbol, self._morpho_borrow_usd(w))
        self._morpho(w.address, "borrow", market.params, loan_units, 0, w.address, w.address, kind="morpho_borrow")
        if w.behaviour == "cross_looper":
            # The loop goes on in Aave: the borrowed USDC is supplied there, WETH borrowed against it and supplied.
            self._aave(w.address, "supply", market.loan_token, loan_units, w.address, 0, kind="loop_supply")
            weth = ATOKEN_COLLATERAL[market.collateral_symbol]
            units = self._units(weth, self._cross_weth_usd(w))
            self._aave(w.address, "borrow", self._token(weth), units, 2, 0, w.address, kind="loop_borrow")
            self._aave(w.address, "supply", self._token(weth), units, w.address, 0, kind="loop_supply")

    def _post(self, w: Wallet, market: MorphoMarket, units: int) -> None:
        self._morpho(
            w.address, "supplyCollateral", market.params, units, w.address, b"", kind="morpho_supplyCollateral"
        )

    def _loop(self, w: Wallet) -> None:
        """Each round: borrow WETH in e-mode, "swap" it for stETH of the same USD value, wrap, supply the wstETH."""
        weth, steth = self._token("WETH"), self.lst.base_token
        for usd in self._loop_borrows(w):
            borrowed = self._units("WETH", usd)
            staked = self._units(LST.base, usd)
            self._aave(w.address, "borrow", weth, borrowed, 2, 0, w.address, kind="loop_borrow")
            self._act(w.address, self.erc20, weth, "transfer", SWAP_SINK, borrowed, kind="loop_swap")
            self.builder.call(w.address, self.mint_abi, steth, "mint", staked)
            self._approve(w.address, steth, self.lst.token)
            self._act(w.address, self.lst_abi, self.lst.token, "wrap", staked, kind="loop_wrap")
            wrapped = staked * WAD // self.lst_rate  # DevnetWstETH.getWstETHByStETH
            self._aave(w.address, "supply", self.lst.token, wrapped, w.address, 0, kind="loop_supply")
