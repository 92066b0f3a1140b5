"""Aave V3 reserve records: the configuration bitmap decoded as ReserveConfiguration.sol lays it out."""

from __future__ import annotations

from dataclasses import dataclass

from chainrisk.protocols.quality import Problem


def _bits(word: int, start: int, width: int) -> int:
    return (word >> start) & ((1 << width) - 1)


@dataclass(frozen=True)
class ReserveConfiguration:
    """ReserveConfigurationMap (bit positions from ReserveConfiguration.sol, Aave V3.0)."""

    ltv: int  #: bits 0-15, bps
    liquidation_threshold: int  #: bits 16-31, bps
    liquidation_bonus: int  #: bits 32-47, bps incl. principal
    decimals: int  #: bits 48-55
    active: bool  #: bit 56
    frozen: bool  #: bit 57
    borrowing_enabled: bool  #: bit 58
    stable_borrowing_enabled: bool  #: bit 59
    paused: bool  #: bit 60
    borrowable_in_isolation: bool  #: bit 61
    siloed_borrowing: bool  #: bit 62
    flashloan_enabled: bool  #: bit 63
    reserve_factor: int  #: bits 64-79, bps
    borrow_cap: int  #: bits 80-115, whole tokens
    supply_cap: int  #: bits 116-151, whole tokens
    liquidation_protocol_fee: int  #: bits 152-167, bps
    emode_category: int  #: bits 168-175
    unbacked_mint_cap: int  #: bits 176-211, whole tokens
    debt_ceiling: int  #: bits 212-251, USD with 2 decimals
    virtual_accounting: bool  #: bit 252 (3.1-3.3; from 3.4 every reserve has it and the bit is retired)

    @classmethod
    def decode(cls, word: int) -> ReserveConfiguration:
        return cls(
            ltv=_bits(word, 0, 16),
            liquidation_threshold=_bits(word, 16, 16),
            liquidation_bonus=_bits(word, 32, 16),
            decimals=_bits(word, 48, 8),
            active=bool(_bits(word, 56, 1)),
            frozen=bool(_bits(word, 57, 1)),
            borrowing_enabled=bool(_bits(word, 58, 1)),
            stable_borrowing_enabled=bool(_bits(word, 59, 1)),
            paused=bool(_bits(word, 60, 1)),
            borrowable_in_isolation=bool(_bits(word, 61, 1)),
            siloed_borrowing=bool(_bits(word, 62, 1)),
            flashloan_enabled=bool(_bits(word, 63, 1)),
            reserve_factor=_bits(word, 64, 16),
            borrow_cap=_bits(word, 80, 36),
            supply_cap=_bits(word, 116, 36),
            liquidation_protocol_fee=_bits(word, 152, 16),
            emode_category=_bits(word, 168, 8),
            unbacked_mint_cap=_bits(word, 176, 36),
            debt_ceiling=_bits(word, 212, 40),
            virtual_accounting=bool(_bits(word, 252, 1)),
        )


@dataclass(frozen=True)
class Reserve:
    """One reserve's state at the snapshot block."""

    asset: str  #: underlying token, lowercase hex
    symbol: str  #: token symbol as the data provider reports it
    reserve_id: int  #: index in the pool's reserves list and the user configuration bitmap
    configuration_word: int  #: raw 256-bit configuration
    config: ReserveConfiguration  #: decoded configuration
    a_token: str  #: aToken
    variable_debt_token: str  #: variable debt token
    stable_debt_token: str  #: stable debt token
    liquidity_index: int  #: ray, as last stored
    variable_borrow_index: int  #: ray, as last stored
    liquidity_rate: int  #: ray per year
    variable_borrow_rate: int  #: ray per year
    last_update_timestamp: int  #: seconds
    normalized_income: int  #: ray, getReserveNormalizedIncome at the snapshot block
    normalized_variable_debt: int  #: ray, getReserveNormalizedVariableDebt at the snapshot block
    price: int  #: AaveOracle.getAssetPrice, base-currency units
    isolation_mode_total_debt: int  #: USD with 2 decimals
    #: Pool.getLiquidationGracePeriod (3.1+): liquidations of or against this reserve revert until after it.
    liquidation_grace_period_until: int = 0
    deficit: int = 0  #: Pool.getReserveDeficit (3.3+), token units
    #: False when AaveOracle.getAssetPrice reverts for the asset (`price` is then 0): the pool itself cannot value
    #: it, and its getUserAccountData reverts for every wallet that uses it as collateral or debt.
    price_known: bool = True
    problems: tuple[Problem, ...] = ()  #: what is odd about its token or its price (chainrisk.protocols.quality)
    #: The reserve's totals as its tokens store them (None where not read: a file indexed before they were):
    a_token_scaled_supply: int | None = None  #: AToken.scaledTotalSupply
    variable_debt_scaled_supply: int | None = None  #: VariableDebtToken.scaledTotalSupply
    accrued_to_treasury: int | None = None  #: ReserveData.accruedToTreasury, scaled, as last stored
    #: StableDebtToken.getSupplyData before 3.2: principal supply, average rate (ray) and its last update (seconds)
    stable_principal: int | None = None
    stable_avg_rate: int | None = None
    stable_last_update: int | None = None
    #: What governance sets beside the configuration (None where not read):
    price_source: str | None = None  #: AaveOracle.getSourceOfAsset, lowercase hex (the zero address: none)
    interest_rate_strategy: str | None = None  #: ReserveData.interestRateStrategyAddress
    #: The strategy's curve for the reserve, ray: optimal usage ratio, base variable borrow rate, variable rate
    #: slopes below and above the optimum (None where the strategy answers neither V2's nor V1's getters)
    rate_curve: tuple[int, int, int, int] | None = None


@dataclass(frozen=True)
class EModeCategory:
    category_id: int  #: 1..255
    ltv: int  #: bps
    liquidation_threshold: int  #: bps
    liquidation_bonus: int  #: bps incl. principal
    price_source: str  #: lowercase hex, zero address when none
    label: str  #: governance label
    price_source_price: int  #: oracle price of the price source, 0 when none
    #: 3.2+ (Pool.getEModeCategoryCollateralBitmap): bit i set = reserve id i counts as e-mode collateral.
    collateral_bitmap: int = 0
    #: 3.2+ (Pool.getEModeCategoryBorrowableBitmap): bit i set = reserve id i may be borrowed in the category.
    borrowable_bitmap: int = 0
    #: 3.6+ (Pool.getEModeCategoryLtvzeroBitmap): bit i set = reserve id i has LTV 0 inside the category.
    ltvzero_bitmap: int = 0
    #: 3.7+ (Pool.getIsEModeCategoryIsolated): every asset outside the collateral bitmap has LTV 0 in the category.
    isolated: bool = False
