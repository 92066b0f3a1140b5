// Aave V3 account figures from Aave's own JS library, @aave/math-utils (formatReserves + formatUserSummary),
// for cross-checking chainrisk's indexer (tests/test_aave_math_utils.py) and timing it (benchmarks).
//
// Input: one JSON object, read from the file named by argv[2] (or from stdin, fd 0, when no path is given):
//   {currentTimestamp, reserves: [raw_aave_v3_reserves rows], emodeCategories: [raw_aave_v3_emode_categories rows],
//    users: [{wallet, emode, user_configuration, userReserves: [raw_aave_v3_balances rows]}], repeat?: int}
// Rows keep the DuckDB snake_case column names; every integer is sent as a decimal string (HUGEINTs do not fit
// a JS number). This script maps them onto the library's input shapes (typings of @aave/math-utils 1.38.0).
// Output (stdout): {seconds, seconds_per_repeat, repeat, wallets, users: [{wallet, healthFactor,
//   totalCollateralUSD, totalBorrowsUSD, totalCollateralMarketReferenceCurrency,
//   totalBorrowsMarketReferenceCurrency, currentLiquidationThreshold}]}, where seconds is the time spent inside
// formatReserves + formatUserSummary (all wallets) summed over `repeat` runs, measured with
// process.hrtime.bigint() and excluding I/O and input mapping.
import { readFileSync } from 'node:fs';
import { formatReserves, formatUserSummary } from '@aave/math-utils';

const MARKET_REFERENCE_CURRENCY_DECIMALS = 8; // AaveOracle BASE_CURRENCY_UNIT = 1e8, USD
const MARKET_REFERENCE_PRICE_IN_USD = '100000000'; // 1 base unit of USD = 1 USD, with 8 decimals
const DEBT_CEILING_DECIMALS = 2; // ReserveConfiguration.DEBT_CEILING_DECIMALS
const ZERO_ADDRESS = '0x0000000000000000000000000000000000000000';

const str = value => String(value ?? '0');

/** Binary string (most significant bit first) with bit i set for each reserve id i: the library's bitmap form. */
function bitmap(ids) {
  let bits = 0n;
  for (const id of ids) bits |= 1n << BigInt(id);
  return bits.toString(2);
}

function mapReserve(row) {
  return {
    originalId: Number(row.reserve_id),
    id: `${row.chain_id}-${row.asset.toLowerCase()}-${row.market}`,
    symbol: row.symbol,
    name: row.symbol,
    decimals: Number(row.decimals),
    underlyingAsset: row.asset.toLowerCase(),
    usageAsCollateralEnabled: str(row.liquidation_threshold) !== '0',
    reserveFactor: str(row.reserve_factor),
    baseLTVasCollateral: str(row.ltv),
    reserveLiquidationThreshold: str(row.liquidation_threshold),
    reserveLiquidationBonus: str(row.liquidation_bonus),
    liquidityIndex: str(row.liquidity_index),
    variableBorrowIndex: str(row.variable_borrow_index),
    liquidityRate: str(row.liquidity_rate),
    variableBorrowRate: str(row.variable_borrow_rate),
    lastUpdateTimestamp: Number(row.last_update_timestamp),
    borrowCap: str(row.borrow_cap),
    supplyCap: str(row.supply_cap),
    debtCeiling: str(row.debt_ceiling),
    debtCeilingDecimals: DEBT_CEILING_DECIMALS,
    isolationModeTotalDebt: str(row.isolation_mode_total_debt),
    // Reserve-wide liquidity figures are not stored by the indexer; the library uses them only for reserve
    // statistics (usage ratios, available liquidity), never in formatUserSummary's account figures.
    availableLiquidity: '0',
    totalScaledVariableDebt: '0',
    virtualUnderlyingBalance: '0', // Aave 3.1+ only
    deficit: '0', // Aave 3.3+ only
    priceInMarketReferenceCurrency: str(row.price),
  };
}

/**
 * Aave 3.0.x e-mode (a category per reserve) in the 3.2+ shape the library expects (per-category bitmaps):
 * a reserve is collateral and borrowable in category c exactly when its configured e-mode category is c.
 */
function mapEModes(categories, reserveRows) {
  return categories.map(category => {
    const id = Number(category.category_id);
    if ((category.price_source ?? ZERO_ADDRESS).toLowerCase() !== ZERO_ADDRESS) {
      // Aave 3.0 prices a category's assets with its price source for that category's users only; the 3.2+
      // model of @aave/math-utils has one price per reserve, so such a market cannot be expressed.
      throw new Error(`e-mode category ${id} has a price source: not representable in @aave/math-utils`);
    }
    const members = reserveRows.filter(r => Number(r.emode_category) === id).map(r => Number(r.reserve_id));
    return {
      id,
      eMode: {
        ltv: str(category.ltv),
        liquidationThreshold: str(category.liquidation_threshold),
        liquidationBonus: str(category.liquidation_bonus),
        collateralBitmap: bitmap(members),
        borrowableBitmap: bitmap(members),
        ltvzeroBitmap: '0',
        isolated: false,
        label: category.label ?? '',
      },
    };
  });
}

function mapUser(user, reserveIds) {
  const configuration = BigInt(user.user_configuration);
  const userReserves = user.userReserves.map(row => {
    const asset = row.asset.toLowerCase();
    const id = reserveIds.get(asset);
    if (id === undefined) throw new Error(`${user.wallet}: unknown reserve ${asset}`);
    if (str(row.stable_debt) !== '0') {
      // @aave/math-utils >= 1.30 dropped stable debt (removed in Aave 3.2); it would silently ignore it.
      throw new Error(`${user.wallet}: stable debt on ${asset} is not supported by @aave/math-utils`);
    }
    return {
      underlyingAsset: asset,
      scaledATokenBalance: str(row.scaled_a_token),
      scaledVariableDebt: str(row.scaled_variable_debt),
      usageAsCollateralEnabledOnUser: ((configuration >> BigInt(2 * id + 1)) & 1n) === 1n,
    };
  });
  return { wallet: user.wallet, emode: Number(user.emode), userReserves };
}

function main() {
  const input = JSON.parse(readFileSync(process.argv[2] ?? 0, 'utf8'));
  const currentTimestamp = Number(input.currentTimestamp);
  const repeat = Math.max(1, Number(input.repeat ?? 1));
  const reserves = input.reserves.map(mapReserve);
  const eModes = mapEModes(input.emodeCategories ?? [], input.reserves);
  const reserveIds = new Map(reserves.map(r => [r.underlyingAsset, r.originalId]));
  const users = input.users.map(user => mapUser(user, reserveIds));

  let summaries = [];
  let elapsed = 0n;
  for (let run = 0; run < repeat; run += 1) {
    const started = process.hrtime.bigint();
    const formattedReserves = formatReserves({
      reserves,
      eModes,
      currentTimestamp,
      marketReferencePriceInUsd: MARKET_REFERENCE_PRICE_IN_USD,
      marketReferenceCurrencyDecimals: MARKET_REFERENCE_CURRENCY_DECIMALS,
    });
    summaries = users.map(user =>
      formatUserSummary({
        currentTimestamp,
        marketReferencePriceInUsd: MARKET_REFERENCE_PRICE_IN_USD,
        marketReferenceCurrencyDecimals: MARKET_REFERENCE_CURRENCY_DECIMALS,
        userReserves: user.userReserves,
        formattedReserves,
        userEmodeCategoryId: user.emode,
      }),
    );
    elapsed += process.hrtime.bigint() - started;
  }

  const seconds = Number(elapsed) / 1e9;
  const output = {
    seconds,
    seconds_per_repeat: seconds / repeat,
    repeat,
    wallets: users.length,
    users: users.map((user, i) => ({
      wallet: user.wallet,
      healthFactor: summaries[i].healthFactor,
      totalCollateralUSD: summaries[i].totalCollateralUSD,
      totalBorrowsUSD: summaries[i].totalBorrowsUSD,
      totalCollateralMarketReferenceCurrency: summaries[i].totalCollateralMarketReferenceCurrency,
      totalBorrowsMarketReferenceCurrency: summaries[i].totalBorrowsMarketReferenceCurrency,
      currentLiquidationThreshold: summaries[i].currentLiquidationThreshold,
    })),
  };
  process.stdout.write(`${JSON.stringify(output)}\n`);
}

main();
