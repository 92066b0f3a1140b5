// Morpho Blue position figures from Morpho's own TypeScript SDK, @morpho-org/blue-sdk, for cross-checking
// chainrisk's Morpho adapter (tests/test_index_morpho.py).
//
// Input: one JSON object from the file named by argv[2]:
//   {markets: [{market_id, loan_token, collateral_token, oracle, irm, lltv, total_supply_assets,
//               total_supply_shares, total_borrow_assets, total_borrow_shares, last_update, fee, price}],
//    positions: [{market_id, wallet, supply_shares, borrow_shares, collateral}]}
// Integers are decimal strings. Market totals are given as stored on chain (not accrued): the SDK's
// Market.accrueInterest needs the IRM's state, which only the Adaptive Curve IRM exposes, so the caller passes
// the state at which to evaluate (chainrisk passes its own accrued totals; accrual is checked against the chain).
// Output (stdout): {positions: [{market_id, wallet, healthFactor, borrowAssets, supplyAssets, collateralValue,
//   maxBorrowAssets, isHealthy, liquidationPrice, marketIdCheck}]}, every bigint as a decimal string
//   (healthFactor is "max" for positions without debt: the SDK returns MaxUint256).
import { readFileSync } from 'node:fs';
import { AccrualPosition, Market, MarketParams } from '@morpho-org/blue-sdk';
import { MathLib } from '@morpho-org/blue-sdk';

const big = value => (value === null || value === undefined ? null : BigInt(value));
const out = value => (value === null || value === undefined ? null : value.toString());

function main() {
  const input = JSON.parse(readFileSync(process.argv[2], 'utf8'));
  const markets = new Map();
  for (const row of input.markets) {
    const params = new MarketParams({
      loanToken: row.loan_token,
      collateralToken: row.collateral_token,
      oracle: row.oracle,
      irm: row.irm,
      lltv: big(row.lltv),
    });
    const market = new Market({
      params,
      totalSupplyAssets: big(row.total_supply_assets),
      totalBorrowAssets: big(row.total_borrow_assets),
      totalSupplyShares: big(row.total_supply_shares),
      totalBorrowShares: big(row.total_borrow_shares),
      lastUpdate: big(row.last_update),
      fee: big(row.fee),
      price: big(row.price),
    });
    markets.set(row.market_id, market);
  }
  const positions = input.positions.map(row => {
    const market = markets.get(row.market_id);
    const position = new AccrualPosition(
      {
        user: row.wallet,
        supplyShares: big(row.supply_shares),
        borrowShares: big(row.borrow_shares),
        collateral: big(row.collateral),
      },
      market,
    );
    const hf = position.healthFactor;
    return {
      market_id: row.market_id,
      wallet: row.wallet,
      marketIdCheck: market.id.toLowerCase() === row.market_id.toLowerCase(),
      healthFactor: hf === MathLib.MAX_UINT_256 ? 'max' : out(hf),
      borrowAssets: out(position.borrowAssets),
      supplyAssets: out(position.supplyAssets),
      collateralValue: out(position.collateralValue),
      maxBorrowAssets: out(position.maxBorrowAssets),
      isHealthy: position.isHealthy,
      liquidationPrice: out(position.liquidationPrice),
    };
  });
  process.stdout.write(`${JSON.stringify({ positions })}\n`);
}

main();
