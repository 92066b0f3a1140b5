"""An L2 Aave market's PriceOracleSentinel: whether it lets liquidations through at a block, and its veto on one."""

from __future__ import annotations

from chainrisk.abi import eth_call, load_abi
from chainrisk.protocols.aave_v3.liquidation import CLOSE_FACTOR_HF_THRESHOLD, LiquidationOutcome
from chainrisk.rpc import RpcClient

PROVIDER = load_abi("aave-v3", "IPoolAddressesProvider")
SENTINEL = load_abi("aave-v3", "IPriceOracleSentinel")
ZERO = "0x" + "0" * 40
#: ValidationLogic.MINIMUM_HEALTH_FACTOR_LIQUIDATION_THRESHOLD (0.95 wad): below it the sentinel has no say.
MINIMUM_HEALTH_FACTOR_LIQUIDATION_THRESHOLD = CLOSE_FACTOR_HF_THRESHOLD
#: Errors a liquidation hits before the sentinel's check (ValidationLogic.validateLiquidationCall, 3.1-3.6).
CHECKED_BEFORE_SENTINEL = ("ReserveInactive", "ReservePaused")


def liquidations_allowed(rpc: RpcClient, provider: str, block: int, answered: str | None = None) -> bool:
    """PriceOracleSentinel.isLiquidationAllowed() of the sentinel `provider` names at `block`; True without one
    (mainnet markets have none). `answered`: the provider's answer to getPriceOracleSentinel at `block`, already
    asked in a batch with other calls (None: asked here, so that a refusal fails as a call of its own would)."""
    tag = hex(block)
    if answered is None:
        answered = rpc.call(*eth_call(provider, PROVIDER, "getPriceOracleSentinel", block=tag))
    sentinel = PROVIDER.decode("getPriceOracleSentinel", answered)[0]
    if sentinel.lower() == ZERO:
        return True
    answer = rpc.call(*eth_call(sentinel, SENTINEL, "isLiquidationAllowed", block=tag))
    return bool(SENTINEL.decode("isLiquidationAllowed", answer)[0])


def with_sentinel(outcome: LiquidationOutcome, allowed: bool) -> LiquidationOutcome:
    """`outcome` (chainrisk.protocols.aave_v3.liquidation, which takes no sentinel into account) once the sentinel
    has had its say: when it disallows liquidations, ValidationLogic.validateLiquidationCall refuses any borrower
    at health 0.95 or above with PriceOracleSentinelCheckFailed, checked right after the reserves' flags."""
    if allowed or outcome.health_factor < MINIMUM_HEALTH_FACTOR_LIQUIDATION_THRESHOLD:
        return outcome
    if outcome.error in CHECKED_BEFORE_SENTINEL:
        return outcome
    return LiquidationOutcome("PriceOracleSentinelCheckFailed", outcome.health_factor, outcome.max_liquidatable_debt)
