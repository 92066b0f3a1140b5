-- The logs in which an Aave V3 market's governance says it changed what mart_parameter_changes reads
-- (GOVERNANCE_EVENT_COLUMNS): the PoolConfigurator's events and the AaveOracle's AssetSourceUpdated, as the index
-- stores them (chainrisk.protocols.aave_v3.events.GOVERNANCE_EVENTS), one row per setting each changes: a collateral
-- configuration its LTV, threshold and bonus; a strategy swapped the strategy and its curve (a 3.1+ configurator
-- logs the curve's own ReserveInterestRateDataChanged too); an e-mode category added or set every setting of the
-- category; a reserve initialised or dropped is listed or gone.
--
-- Grain: one row per log and setting (chain_id, source, block_number, log_index, parameter).
-- Key columns:
--   source                 the market's PoolAddressesProvider
--   item                   the reserve's asset, or the e-mode category's id (as stg_aave_v3_parameter_changes names
--                          them)
--   change, parameter      'changed' and the setting's raw column, or 'listed' / 'gone' (parameter NULL)
--   block_number, tx_hash, log_index   where the log is
-- Reads: raw_aave_v3_events.
WITH logs AS (
    SELECT * FROM raw_aave_v3_events WHERE wallet = '0x0000000000000000000000000000000000000000'
),

-- What each event changes.
changes AS (
    SELECT * FROM (VALUES
        ('ReserveInitialized', 'listed', NULL),
        ('ReserveDropped', 'gone', NULL),
        ('CollateralConfigurationChanged', 'changed', 'ltv'),
        ('CollateralConfigurationChanged', 'changed', 'liquidation_threshold'),
        ('CollateralConfigurationChanged', 'changed', 'liquidation_bonus'),
        ('ReserveFactorChanged', 'changed', 'reserve_factor'),
        ('LiquidationProtocolFeeChanged', 'changed', 'liquidation_protocol_fee'),
        ('BorrowCapChanged', 'changed', 'borrow_cap'),
        ('SupplyCapChanged', 'changed', 'supply_cap'),
        ('UnbackedMintCapChanged', 'changed', 'unbacked_mint_cap'),
        ('DebtCeilingChanged', 'changed', 'debt_ceiling'),
        ('LiquidationGracePeriodChanged', 'changed', 'liquidation_grace_period_until'),
        ('LiquidationGracePeriodDisabled', 'changed', 'liquidation_grace_period_until'),
        ('EModeAssetCategoryChanged', 'changed', 'emode_category'),
        ('ReserveInterestRateStrategyChanged', 'changed', 'interest_rate_strategy'),
        ('ReserveInterestRateStrategyChanged', 'changed', 'optimal_usage_ratio'),
        ('ReserveInterestRateStrategyChanged', 'changed', 'base_variable_borrow_rate'),
        ('ReserveInterestRateStrategyChanged', 'changed', 'variable_rate_slope1'),
        ('ReserveInterestRateStrategyChanged', 'changed', 'variable_rate_slope2'),
        ('ReserveInterestRateDataChanged', 'changed', 'optimal_usage_ratio'),
        ('ReserveInterestRateDataChanged', 'changed', 'base_variable_borrow_rate'),
        ('ReserveInterestRateDataChanged', 'changed', 'variable_rate_slope1'),
        ('ReserveInterestRateDataChanged', 'changed', 'variable_rate_slope2'),
        ('ReserveActive', 'changed', 'active'),
        ('ReserveFrozen', 'changed', 'frozen'),
        ('ReservePaused', 'changed', 'paused'),
        ('ReserveBorrowing', 'changed', 'borrowing_enabled'),
        ('ReserveStableRateBorrowing', 'changed', 'stable_borrowing_enabled'),
        ('BorrowableInIsolationChanged', 'changed', 'borrowable_in_isolation'),
        ('SiloedBorrowingChanged', 'changed', 'siloed_borrowing'),
        ('ReserveFlashLoaning', 'changed', 'flashloan_enabled'),
        ('AssetSourceUpdated', 'changed', 'price_source'),
        ('EModeCategoryAdded', 'listed', NULL),
        ('EModeCategoryAdded', 'changed', 'ltv'),
        ('EModeCategoryAdded', 'changed', 'liquidation_threshold'),
        ('EModeCategoryAdded', 'changed', 'liquidation_bonus'),
        ('EModeCategoryAdded', 'changed', 'price_source'),
        ('EModeCategoryAdded', 'changed', 'label')
    ) AS v (event, change, parameter)
)

SELECT
    'aave-v3' AS protocol,
    l.chain_id,
    l.market AS source,
    CASE WHEN l.event = 'EModeCategoryAdded' THEN l.code::VARCHAR ELSE l.reserve END AS item,
    c.change,
    c.parameter,
    l.block_number,
    l.tx_hash,
    l.log_index
FROM logs AS l
JOIN changes AS c USING (event)
