"""Deploys the Liquity V1 stand-ins (chainrisk's own Solidity under standins/liquity_v1, not Liquity's bytecode) and
runs a trove population on them: troves at varied ICR (some just above 110 %), Stability Pool deposits, a crash
liquidated with a small pool (so redistribution rewards stay pending on the other troves), adjustments and new
troves days later, a second crash the pool absorbs, and a last crash left unliquidated.

`build_liquity(builder)` returns the manifest section (with "stand_in": true and its label); the price setter is
the deployer (the stand-in PriceFeed's owner), so a devnet can move the price with `set_price`.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from typing import Any

from chainrisk.abi import Abi, eth_call, keccak
from chainrisk.devnet.node import DEPLOYER, BlockBuilder
from chainrisk.devnet.toolchain import standin_contracts

STANDIN_FOLDER = "liquity_v1"
LABEL = "Liquity V1 stand-in (chainrisk's own Solidity, not Liquity's bytecode)"
WAD = 10**18
MCR = 11 * 10**17
#: BorrowerOperations' fee ceiling the population accepts (100 %: the base rate only decays on the devnet).
MAX_FEE = WAD
#: BORROWING_FEE_FLOOR while the base rate is zero.
FEE_FLOOR = 5 * 10**15
GAS_COMPENSATION = 200 * WAD
MIN_NET_DEBT = 1800 * WAD
DAY = 86_400
#: Troves per batchLiquidateTroves: each costs about 100k gas, and a devnet transaction gets TX_GAS (8M).
LIQUIDATION_BATCH = 40
ZERO = "0x" + "0" * 40


def _contracts() -> dict[str, Abi]:
    return {name: Abi(c.abi) for name, c in standin_contracts(STANDIN_FOLDER).items()}


def _address(label: str) -> str:
    return "0x" + keccak(f"chainrisk-devnet:liquity:{label}".encode())[-20:].hex()


@dataclass(frozen=True)
class LiquityDeployment:
    trove_manager: str  #: TroveManager stand-in
    borrower_operations: str  #: BorrowerOperations stand-in
    price_feed: str  #: PriceFeed stand-in (setPrice by the deployer)
    stability_pool: str  #: StabilityPool stand-in
    active_pool: str  #: ActivePool stand-in
    default_pool: str  #: DefaultPool stand-in
    coll_surplus_pool: str  #: CollSurplusPool stand-in
    gas_pool: str  #: GasPool stand-in
    sorted_troves: str  #: SortedTroves stand-in
    lusd_token: str  #: LUSD stand-in
    fee_recipient: str  #: receives borrowing fees (LQTY staking on mainnet)


def deploy_liquity(builder: BlockBuilder, price: int) -> LiquityDeployment:
    """Every stand-in, wired together (each contract gives up its setter afterwards, as Liquity's renounce
    ownership); the price feed starts at `price` (USD per ETH, 18 decimals)."""
    c = standin_contracts(STANDIN_FOLDER)
    abi = _contracts()
    feed = builder.deploy(c["PriceFeed"], price, label="Liquity PriceFeed (stand-in)")
    tm = builder.deploy(c["TroveManager"], label="Liquity TroveManager (stand-in)")
    bo = builder.deploy(c["BorrowerOperations"], label="Liquity BorrowerOperations (stand-in)")
    active = builder.deploy(c["ActivePool"], label="Liquity ActivePool (stand-in)")
    default = builder.deploy(c["DefaultPool"], label="Liquity DefaultPool (stand-in)")
    sp = builder.deploy(c["StabilityPool"], label="Liquity StabilityPool (stand-in)")
    surplus = builder.deploy(c["CollSurplusPool"], label="Liquity CollSurplusPool (stand-in)")
    gas = builder.deploy(c["GasPool"], label="Liquity GasPool (stand-in)")
    sorted_troves = builder.deploy(c["SortedTroves"], label="Liquity SortedTroves (stand-in)")
    lusd = builder.deploy(c["LUSDToken"], tm, sp, bo, label="Liquity LUSD (stand-in)")
    fees = _address("lqty-staking")
    builder.call(
        DEPLOYER,
        abi["TroveManager"],
        tm,
        "setAddresses",
        bo,
        active,
        default,
        sp,
        gas,
        surplus,
        feed,
        lusd,
        sorted_troves,
    )
    builder.call(
        DEPLOYER,
        abi["BorrowerOperations"],
        bo,
        "setAddresses",
        tm,
        active,
        default,
        sp,
        gas,
        surplus,
        feed,
        sorted_troves,
        lusd,
        fees,
    )
    builder.call(DEPLOYER, abi["ActivePool"], active, "setAddresses", bo, tm, sp, default)
    builder.call(DEPLOYER, abi["DefaultPool"], default, "setAddresses", tm, active)
    builder.call(DEPLOYER, abi["StabilityPool"], sp, "setAddresses", bo, tm, active, lusd, sorted_troves, feed)
    builder.call(DEPLOYER, abi["CollSurplusPool"], surplus, "setAddresses", bo, tm, active)
    builder.call(DEPLOYER, abi["SortedTroves"], sorted_troves, "setParams", tm, bo)
    builder.mine(1)
    return LiquityDeployment(tm, bo, feed, sp, active, default, surplus, gas, sorted_troves, lusd, fees)


def set_price(builder: BlockBuilder, deployment: LiquityDeployment, price: int) -> None:
    """Queues the stand-in PriceFeed's new lastGoodPrice (mined with the builder's next block)."""
    builder.call(DEPLOYER, _contracts()["PriceFeed"], deployment.price_feed, "setPrice", price)


@dataclass(frozen=True)
class TrovePlan:
    wallet: str  #: borrower
    icr: float  #: ICR at opening
    lusd: int  #: LUSD drawn (wei), before fee and gas compensation
    deposit_share: float  #: share of the drawn LUSD put in the Stability Pool later (0: none)


def plan_troves(count: int, seed: int) -> list[TrovePlan]:
    """A quarter just above MCR (112-119 %), a third at 130-200 %, the rest 200-400 %; debts Pareto from
    2,000 LUSD (alpha 1.2, capped at 2M); 40 % of borrowers later deposit part of their LUSD."""
    rng = random.Random(seed)
    plans = []
    for i in range(count):
        band = rng.random()
        icr = rng.uniform(1.12, 1.19) if band < 0.25 else rng.uniform(1.3, 2.0) if band < 0.6 else rng.uniform(2, 4)
        lusd = int(min(2_000_000, 2000 * rng.paretovariate(1.2)) * WAD)
        deposit = rng.uniform(0.1, 0.4) if rng.random() < 0.4 else 0.0
        plans.append(TrovePlan(_address(f"trove:{seed}:{i}"), icr, lusd, deposit))
    return plans


class LiquityPopulation:
    """Sends the population's transactions through a BlockBuilder and keeps count of what it did."""

    def __init__(self, builder: BlockBuilder, deployment: LiquityDeployment, seed: int) -> None:
        self.builder = builder
        self.d = deployment
        self.rng = random.Random(seed + 1)
        self.abi = _contracts()
        self.keeper = _address("keeper")
        self.actions: dict[str, int] = {}
        self.liquidations = 0
        self.redistributions = 0
        self.price = 0

    def _count(self, kind: str) -> None:
        self.actions[kind] = self.actions.get(kind, 0) + 1

    def _fund(self, wallet: str, wei: int) -> None:
        self.builder.rpc.call("anvil_setBalance", [wallet, hex(wei)])

    def _view(self, contract: str, name: str, fn: str, *args: Any) -> Any:
        abi = self.abi[name]
        return abi.decode(fn, self.builder.rpc.call(*eth_call(contract, abi, fn, *args)))

    def set_price(self, price: int) -> None:
        set_price(self.builder, self.d, price)
        self.price = price

    def open_troves(self, plans: list[TrovePlan]) -> None:
        """Opens every planned trove at the current price, highest ICR first so the TCR stays above CCR."""
        for plan in sorted(plans, key=lambda p: -p.icr):
            lusd = max(plan.lusd, MIN_NET_DEBT)
            composite = lusd + lusd * FEE_FLOOR // WAD + GAS_COMPENSATION
            coll = -(-int(plan.icr * 10**6) * 10**12 * composite // self.price)
            self._fund(plan.wallet, coll + WAD)
            self.builder.call(
                plan.wallet,
                self.abi["BorrowerOperations"],
                self.d.borrower_operations,
                "openTrove",
                MAX_FEE,
                lusd,
                ZERO,
                ZERO,
                value=coll,
                required=False,
            )
            self._count("open")

    def deposit(self, plans: list[TrovePlan]) -> None:
        """Each depositor puts its share of its LUSD balance in the Stability Pool."""
        for plan in plans:
            if not plan.deposit_share:
                continue
            (balance,) = self._view(self.d.lusd_token, "LUSDToken", "balanceOf", plan.wallet)
            amount = int(balance * plan.deposit_share)
            if amount:
                self.builder.call(
                    plan.wallet,
                    self.abi["StabilityPool"],
                    self.d.stability_pool,
                    "provideToSP",
                    amount,
                    ZERO,
                    required=False,
                )
                self._count("deposit")

    def active_troves(self) -> list[str]:
        (count,) = self._view(self.d.trove_manager, "TroveManager", "getTroveOwnersCount")
        return [
            str(self._view(self.d.trove_manager, "TroveManager", "getTroveFromTroveOwnersArray", i)[0]).lower()
            for i in range(count)
        ]

    def liquidate(self) -> int:
        """The keeper liquidates every trove under MCR, lowest ICR first, in batches; returns how many."""
        icrs = {
            w: self._view(self.d.trove_manager, "TroveManager", "getCurrentICR", w, self.price)[0]
            for w in self.active_troves()
        }
        under = sorted((w for w, icr in icrs.items() if icr < MCR), key=lambda w: (icrs[w], w))
        if not under:
            return 0
        (l_before,) = self._view(self.d.trove_manager, "TroveManager", "L_ETH")
        for start in range(0, len(under), LIQUIDATION_BATCH):
            self.builder.call(
                self.keeper,
                self.abi["TroveManager"],
                self.d.trove_manager,
                "batchLiquidateTroves",
                under[start : start + LIQUIDATION_BATCH],
            )
        self.builder.mine(60)
        (l_after,) = self._view(self.d.trove_manager, "TroveManager", "L_ETH")
        self.liquidations += len(under)
        self.redistributions += int(l_after > l_before)
        return len(under)

    def adjust(self, plans: list[TrovePlan]) -> None:
        """Some borrowers repay, top up, draw more, or close (the fee recipient lends them the fee they lack)."""
        bo, abi = self.d.borrower_operations, self.abi["BorrowerOperations"]
        active = set(self.active_troves())
        (lender_balance,) = self._view(self.d.lusd_token, "LUSDToken", "balanceOf", self.d.fee_recipient)
        for plan in plans:
            if plan.wallet not in active:
                continue
            roll = self.rng.random()
            if roll < 0.2:
                (balance,) = self._view(self.d.lusd_token, "LUSDToken", "balanceOf", plan.wallet)
                amount = min(balance, plan.lusd // 4)
                if amount:
                    self.builder.call(plan.wallet, abi, bo, "repayLUSD", amount, ZERO, ZERO, required=False)
                    self._count("repay")
            elif roll < 0.3:
                self._fund(plan.wallet, 200 * WAD)
                self.builder.call(
                    plan.wallet, abi, bo, "addColl", ZERO, ZERO, value=plan.lusd * 10**17 // self.price, required=False
                )
                self._count("add_collateral")
            elif roll < 0.4 and plan.icr > 1.6:
                self.builder.call(
                    plan.wallet, abi, bo, "withdrawLUSD", MAX_FEE, plan.lusd // 5, ZERO, ZERO, required=False
                )
                self._count("borrow")
            elif roll < 0.45:
                (debt,) = self._view(self.d.trove_manager, "TroveManager", "getEntireDebtAndColl", plan.wallet)[:1]
                (balance,) = self._view(self.d.lusd_token, "LUSDToken", "balanceOf", plan.wallet)
                short = max(0, debt - GAS_COMPENSATION - balance + WAD)
                if short > lender_balance:
                    continue  # more than the fees collected so far can lend: this borrower keeps its trove
                if short:
                    lender_balance -= short
                    self.builder.call(
                        self.d.fee_recipient,
                        self.abi["LUSDToken"],
                        self.d.lusd_token,
                        "transfer",
                        plan.wallet,
                        short,
                        required=False,
                    )
                self.builder.call(plan.wallet, abi, bo, "closeTrove", required=False)
                self._count("close")


def build_liquity(
    builder: BlockBuilder, *, troves: int = 40, seed: int = 7, eth_price_usd: int = 2000
) -> dict[str, Any]:
    """Deploys the stand-ins and runs the population (about 10 simulated days); returns the manifest section."""
    first_block = int(builder.rpc.call("eth_blockNumber"), 16) + 1
    deployment = deploy_liquity(builder, eth_price_usd * WAD)
    section = populate_liquity(builder, deployment, troves=troves, seed=seed, eth_price_usd=eth_price_usd)
    return {"stand_in": True, "label": LABEL, **section, "deployment_block": first_block}


def populate_liquity(
    builder: BlockBuilder, deployment: LiquityDeployment, *, troves: int, seed: int, eth_price_usd: int
) -> dict[str, Any]:
    """The population on a deployment whose PriceFeed the deployer can set (it only calls Liquity's own functions
    otherwise); returns what it did and where, for the manifest."""
    price = eth_price_usd * WAD
    population = LiquityPopulation(builder, deployment, seed)
    population.price = price
    plans = plan_troves(troves, seed)
    late = plans[-max(2, troves // 8) :]
    early = plans[: len(plans) - len(late)]
    population.open_troves(early)
    builder.mine(3600)
    # A small pool at first: the first crash's liquidations overflow it into redistribution.
    population.deposit([p for p in early if p.deposit_share][:2])
    builder.mine(3600)
    population.set_price(price * 95 // 100)
    builder.mine(DAY)
    population.liquidate()
    population.set_price(price)
    builder.mine(DAY)
    population.adjust(early)
    builder.mine(DAY)
    population.deposit([p for p in early if p.deposit_share][2:])
    builder.mine(2 * DAY)
    population.set_price(price * 93 // 100)
    builder.mine(3600)
    population.liquidate()
    population.set_price(price * 98 // 100)
    builder.mine(DAY)
    # Opened after liquidations: their stakes come from the snapshots (TroveManager._computeNewStake).
    population.open_troves(late)
    builder.mine(DAY)
    population.adjust(early)
    builder.mine(2 * DAY)
    population.set_price(price * 90 // 100)
    builder.mine(3600)
    return {
        "protocol": "liquity-v1",
        **asdict(deployment),
        "price_setter": DEPLOYER.lower(),
        "keeper": population.keeper,
        "wallets": [p.wallet for p in plans],
        "depositors": [p.wallet for p in plans if p.deposit_share],
        "price": str(population.price),
        "actions": dict(sorted(population.actions.items())),
        "reverted": dict(sorted(builder.reverted.items())),
        "liquidations": population.liquidations,
        "redistributions": population.redistributions,
    }
