"""Morpho Blue's oracles on the devnet are a stand-in, FeedRatioOracle (chainrisk/devnet/contracts/DevnetContracts.sol:
price() from the collateral's and the loan token's USD feeds, the getters of MorphoChainlinkOracleV2). Here it is held
to Morpho's own MorphoChainlinkOracleV2 (morpho-org/morpho-blue-oracles): over the same feeds, for every pair of token
decimals and feed answers tests/data/morpho_oracle_vectors.json holds (recorded from the real oracle by
tests/vectors/record_morpho_oracle.py; its `source` says how), the stand-in's price() equals the real one's, to the
unit. Morpho Blue's health check and liquidations read nothing else of an oracle."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chainrisk.abi import Abi, eth_call
from chainrisk.devnet.node import BlockBuilder
from chainrisk.devnet.toolchain import compiled_contracts
from chainrisk.rpc import RpcClient, RpcError
from tests.chainops import bare_chain

VECTORS = Path(__file__).parent / "data" / "morpho_oracle_vectors.json"
#: (collateral decimals, loan decimals): the devnet's markets' and the odd ones around them.
DECIMALS = [(18, 6), (8, 6), (18, 18), (6, 18), (8, 18), (18, 8), (6, 6), (0, 18), (18, 0)]
#: (collateral feed answer, loan feed answer), 8 decimals: a dollar stablecoin, ETH- and BTC-like prices, one unit,
#: a depegged quote and a price to the cent.
ANSWERS = [(2000 * 10**8, 10**8), (30_000 * 10**8, 99_990_000), (1, 10**8), (10**8, 2000 * 10**8), (123_456_789, 3)]


#: deploy(builder, collateral feed, loan feed, collateral decimals, loan decimals) -> the oracle's address
Deploy = Callable[[BlockBuilder, str, str, int, int], str]


def oracle_prices(rpc: RpcClient, deploy: Deploy) -> list[dict[str, Any]]:
    """Each case of DECIMALS x ANSWERS: its decimals, answers and what price() answers, the oracle made by
    `deploy(builder, collateral feed, loan feed, collateral decimals, loan decimals)` (None where price() reverts)."""
    builder = BlockBuilder(rpc)
    feed = compiled_contracts()["SettableFeed"]
    answers = sorted({a for pair in ANSWERS for a in pair})
    feeds = {a: builder.deploy(feed, 8, a, f"feed {a}", label=f"feed {a}") for a in answers}
    cases = []
    for collateral_decimals, loan_decimals in DECIMALS:
        for collateral_answer, loan_answer in ANSWERS:
            oracle = deploy(builder, feeds[collateral_answer], feeds[loan_answer], collateral_decimals, loan_decimals)
            cases.append((collateral_decimals, loan_decimals, collateral_answer, loan_answer, oracle))
    abi = Abi(compiled_contracts()["FeedRatioOracle"].abi)  # price(), as IOracle has it
    found = []
    for collateral_decimals, loan_decimals, collateral_answer, loan_answer, oracle in cases:
        try:
            price: int | None = abi.decode("price", rpc.call(*eth_call(oracle, abi, "price")))[0]
        except RpcError:
            price = None
        found.append(
            {
                "collateral_decimals": collateral_decimals,
                "loan_decimals": loan_decimals,
                "collateral_answer": collateral_answer,
                "loan_answer": loan_answer,
                "price": price,
            }
        )
    return found


def test_the_stand_in_oracle_prices_as_morphos_own(tmp_path: Path) -> None:
    real = json.loads(VECTORS.read_text())["cases"]
    stand_in = compiled_contracts()["FeedRatioOracle"]

    def deploy(builder: BlockBuilder, collateral_feed: str, loan_feed: str, collateral: int, loan: int) -> str:
        address: str = builder.deploy(stand_in, collateral_feed, loan_feed, collateral, loan, label="FeedRatioOracle")
        return address

    with bare_chain(tmp_path) as chain:
        ours = oracle_prices(chain.rpc, deploy)
    assert ours == real
    assert len(real) == len(DECIMALS) * len(ANSWERS) and all(c["price"] for c in real)
