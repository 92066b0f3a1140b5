"""Mainnet-scale run on one machine: `--accounts` Aave V3 borrowers and `--morpho-markets` Morpho Blue markets holding
`--morpho-positions` borrow positions, on the devnet's real bytecode, then `chainrisk run` timed as users run it.

The chain: the devnet (every protocol, a small population), then the bulk of the population written directly into
chain state. Sending it as transactions (a supply on behalf of each wallet, then the wallet's borrow) cannot reach the
goal size here: anvil keeps about 80 KiB per transaction even with --prune-history, and a 100,000-borrower load
stopped at 150,511 transactions with anvil at 12 GiB. Written state costs anvil almost nothing: the 200,000 + 50,000
load is about 900,000 `anvil_setStorageAt` calls, 3,100 real transactions and 126 log transactions, and left anvil at
1.7 GiB (measured on this machine; the run's own figures are in its results file).

- Real transactions, few: caps lifted, the funder's USDC liquidity on Aave, its own small WETH-backed loan, every
  Morpho market enabled and created and supplied (1,000 of each), and one supply per Aave reserve after the writes
  (so the pool sets its rates from the new totals, as the next user action on mainnet would).
- Storage, in JSON-RPC batches: for Aave 3.0.2 each wallet's aWETH and variable-debt USDC `_userState` (scaled
  balance in the low 128 bits, the index in `additionalData`), its `_usersConfig` bitmap (WETH collateral, USDC
  borrowed), the tokens' scaled `_totalSupply`; for Morpho each `position` (borrow shares | collateral in the second
  word; fresh markets, so shares = assets x 1e6, Morpho's virtual shares) and each market's borrow totals; for the
  tokens, the WETH the aToken and Morpho hold, the USDC that left them for the borrowers, and the total supplies. Every
  total is the sum of what was written, so the contracts' own getters are coherent. The slots are not assumed: each
  one is found by probing the storage of a holder the real transactions made (`probe_mapping`, `probe_plain`: slots
  0..199, exactly one must hold the getter's value), Morpho's from its fixed layout, checked by `position()`.
- Logs: chainrisk (like any indexer) finds Aave accounts from the aToken and debt-token Transfer logs and Pool events,
  and Morpho positions from Morpho's events. The wallets get the logs their supply and borrow would have left: aWETH
  and variable-debt `Transfer(0 -> wallet, amount)` mints, Morpho `SupplyCollateral` and `Borrow`. They are emitted
  from the contracts' own addresses by swapping in a 46- to 51-byte emitter (`emitter_code`, assembled here: one LOG per
  calldata record) for one block batch and putting the original code back (storage untouched), 4,000 logs per
  transaction. The package is unchanged: no discovery path exists for the benchmark only.

Before any figure is kept, `--verify` random wallets of each protocol are checked against the contracts at the stored
block: Aave's stored collateral, debt, available borrows and health factor equal `getUserAccountData` exactly, Morpho's
stored positions equal `position()` (the run stops otherwise); and again, other random wallets, after the steady runs
(which read again only the accounts and positions events named since the previous snapshot).

Measured, each `chainrisk run --devnet` in a process of its own (peak memory is that process's VmHWM):
- the first run: index every market from block 0, score, publish;
- `--runs` steady-state runs, each after `--changed` wallets borrowed more (two thirds Aave, a third Morpho) in a
  block five chain minutes after the last: run time, peak memory, database and published copies after each; with
  `--price-move PCT` the WETH/USD feed takes a new round in that block too (PCT % down, then back up, in turns), so
  every wallet and every market is valued anew, as a mainnet ETH/USD round moves a book (the year built from such runs
  is then one with ETH moving every five minutes: an upper bound);
- reader latency: `mart_market_summary` read through the published copy in a loop, idle and during the first of them;
- a simulated year (`_simulate_year`): what 105,120 five-minute runs leave, constructed from what the measured runs
  left (raw versions, events and snapshot_blocks rows per run; the health history's hour and day buckets per wallet),
  for `--year-share` of the runs and `--year-wallets` of the wallet-market keys, then one real run on top; the whole
  year's size extrapolated from the parts constructed (stated in the results); the constructed year is published
  once (a whole rewrite of what it grew, as the daily downsampling's run does) before the run on top, which then
  publishes what a run adds to a year its runs published. With `--year-cold` (and `--year-wallets 0`) every key's
  year is built, in batches of days that the code's own eviction moves to cold files one after the other, so the
  buckets are measured on disk, not extrapolated; then also the Wallet page's health history read for 20 wallets.
Goals (issue 22): steady-state run < 60 s and < 4 GiB; a year < 50 GB. Figures go to
benchmarks/results/scale-ACCOUNTS.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
from eth_utils.crypto import keccak

sys.path.insert(0, str(Path(__file__).resolve().parent))
from wallet_page import summary, wallet_reads

from chainrisk.abi import Abi, event_topic, load_abi
from chainrisk.devnet.build import DevnetOptions, build_devnet
from chainrisk.devnet.node import DEPLOYER, TX_GAS, free_port, stop_process
from chainrisk.devnet.prices import parse_start
from chainrisk.devnet.toolchain import aave_artifact, compiled_contracts, standin_contracts
from chainrisk.protocols.aave_v3.events import TRANSFER_TOPIC
from chainrisk.protocols.frames import HEALTH_WAD_CAP
from chainrisk.protocols.morpho_blue.events import EVENTS as MORPHO_EVENTS
from chainrisk.protocols.morpho_blue.snapshot import position_base_slot
from chainrisk.rpc import RpcClient
from chainrisk.store import ledger
from chainrisk.store.history import BUCKETS, HistorySettings, compact_months, evict_days, refresh_cold_view
from chainrisk.store.published import COLD_DATA, connect_reader, published_dir, read_manifest
from chainrisk.store.schema.history import ENCODE
from chainrisk.store.versions import SNAPSHOT_COLUMNS, key_columns
from chainrisk.store.views import query_sql

RESULTS = Path(__file__).parent / "results"
FUNDER = "0x" + keccak(b"scale:funder").hex()[-40:]
TXS_PER_BLOCK = 1_000
#: The bulk load stops when anvil's resident memory passes this share of the machine's (anvil keeps every
#: transaction: a 100,000-borrower load reached 22.9 GiB of 23 before it was stopped by hand).
ANVIL_MEMORY_SHARE = 0.5
WAD = 10**18
#: A run every five minutes, so a year is 105,120 runs.
RUN_EVERY_S = 300
YEAR_RUNS = 365 * 24 * 3600 // RUN_EVERY_S
RAY = 10**27
POOL_ABI = load_abi("aave-v3", "IPool")
SUPPLY_COLLATERAL_TOPIC = event_topic(MORPHO_EVENTS["SupplyCollateral"])
BORROW_TOPIC = event_topic(MORPHO_EVENTS["Borrow"])
#: Morpho Blue's storage: owner, feeRecipient, position (POSITION_SLOT = 2), then `market` (Id => Market).
MORPHO_MARKET_SLOT = 3
MAX_UINT = 2**256 - 1
#: Buckets a batch of the year's construction holds at most with --year-cold (~1.3 GiB in the database).
BATCH_BUCKETS = 25_000_000


def _resident_mib(pid: int, field_name: str = "VmRSS") -> int:
    """A process's resident memory (or its peak, VmHWM) in MiB from /proc; 0 once it has gone."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return 0
    return next((int(line.split()[1]) // 1024 for line in lines if line.startswith(f"{field_name}:")), 0)


def _memory_total_mib() -> int:
    lines = Path("/proc/meminfo").read_text().splitlines()
    return next(int(line.split()[1]) // 1024 for line in lines if line.startswith("MemTotal:"))


def _wallet(kind: str, index: int) -> str:
    return "0x" + keccak(f"scale:{kind}:{index}".encode()).hex()[-40:]


@dataclass
class Sender:
    """Sends transactions in JSON-RPC batches and mines them, every receipt required to succeed."""

    rpc: RpcClient
    timestamp: int
    anvil_pid: int  #: watched: anvil keeps every block's state in memory, and a shared machine must not swap
    nonces: dict[str, int] = field(default_factory=dict)
    pending: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    sent: int = 0

    def call(self, sender: str, abi: Abi, to: str, fn: str, *args: Any) -> None:
        self.send(sender, to, abi.encode(fn, *args), fn)

    def send(self, sender: str, to: str | None, data: str, label: str, gas: int = TX_GAS) -> None:
        key = sender.lower()
        if key not in self.nonces:
            self.nonces[key] = int(self.rpc.call("eth_getTransactionCount", [sender, "pending"]), 16)
        payload = {"from": sender, "to": to, "data": data, "gas": hex(gas), "gasPrice": "0x0"}
        payload["nonce"] = hex(self.nonces[key])
        self.nonces[key] += 1
        self.pending.append((label, payload))
        if len(self.pending) >= TXS_PER_BLOCK:
            self.mine()

    def fresh(self, wallet: str) -> None:
        """A wallet that never sent a transaction: nonce 0, no need to ask the node."""
        self.nonces.setdefault(wallet.lower(), 0)

    def mine(self) -> None:
        if not self.pending:
            return
        labels = [label for label, _ in self.pending]
        self.rpc.batch([("eth_sendTransaction", [payload]) for _, payload in self.pending])
        self.pending = []
        self.timestamp += 12
        self.rpc.call("evm_mine", [self.timestamp])
        receipts = self.rpc.call("eth_getBlockReceipts", ["latest"]) or []
        failed = [label for label, r in zip(labels, receipts, strict=False) if int(r["status"], 16) != 1]
        if len(receipts) != len(labels) or failed:
            raise SystemExit(f"bulk load: {len(receipts)} of {len(labels)} mined, reverted: {failed[:5]}")
        self.sent += len(labels)
        anvil_mib, limit_mib = _resident_mib(self.anvil_pid), _memory_total_mib() * ANVIL_MEMORY_SHARE
        if anvil_mib > limit_mib:
            raise SystemExit(
                f"bulk load stopped after {self.sent:,} transactions: anvil holds {anvil_mib:,} MiB, over "
                f"{ANVIL_MEMORY_SHARE:.0%} of this machine's memory; give fewer --accounts / --morpho-positions"
            )


# --- chain state written directly -------------------------------------------------------------------------------

#: EVM opcodes the log emitter is assembled from (the emitter is this file's own twenty-odd bytes, not third-party).
_OP = {"STOP": 0x00, "ADD": 0x01, "LT": 0x10, "CALLDATALOAD": 0x35, "CALLDATASIZE": 0x36, "CALLDATACOPY": 0x37}
_OP |= {"JUMP": 0x56, "JUMPI": 0x57, "JUMPDEST": 0x5B, "PUSH1": 0x60, "DUP1": 0x80, "LOG0": 0xA0}
#: Logs per emitting transaction: about 3,500 gas each (LOG3/LOG4 with one to three data words, plus calldata).
LOGS_PER_TX = 4_000
#: anvil_setStorageAt calls per JSON-RPC batch.
WRITES_PER_BATCH = 5_000


def emitter_code(topics: int, data_words: int) -> str:
    """Runtime code that emits one LOG<topics> per record of its calldata, a record being `topics` topic words then
    `data_words` data words: the logs a contract's own functions would have emitted, without running them."""
    stride = 32 * (topics + data_words)
    code = [_OP["PUSH1"], 0, _OP["JUMPDEST"], _OP["CALLDATASIZE"], _OP["DUP1"] + 1, _OP["LT"], _OP["PUSH1"], 10]
    code += [_OP["JUMPI"], _OP["STOP"], _OP["JUMPDEST"]]  # [i]; stops once i >= calldatasize
    code += [_OP["PUSH1"], 32 * data_words, _OP["DUP1"] + 1, _OP["PUSH1"], 32 * topics, _OP["ADD"], _OP["PUSH1"], 0]
    code += [_OP["CALLDATACOPY"]]  # memory[0:] = the record's data words
    for depth, k in enumerate(reversed(range(topics))):  # topic k from calldata[i + 32k], the last pushed first
        code += [_OP["DUP1"] + depth, _OP["PUSH1"], 32 * k, _OP["ADD"], _OP["CALLDATALOAD"]]
    code += [_OP["PUSH1"], 32 * data_words, _OP["PUSH1"], 0, _OP["LOG0"] + topics]
    code += [_OP["PUSH1"], stride, _OP["ADD"], _OP["PUSH1"], 2, _OP["JUMP"]]
    return "0x" + bytes(code).hex()


def _word(value: int | str) -> str:
    """A 32-byte word, hex without 0x, from an int or an address / bytes32 hex string."""
    if isinstance(value, str):
        return value[2:].rjust(64, "0")
    return f"{value:064x}"


def emit_logs(sender: Sender, address: str, topics: int, data_words: int, records: list[list[int | str]]) -> int:
    """Emits `records` as logs of `address`: its code swapped for the emitter, the logs mined, its code put back
    (storage untouched). Returns the transactions it took."""
    rpc = sender.rpc
    original = rpc.call("eth_getCode", [address, "latest"])
    rpc.call("anvil_setCode", [address, emitter_code(topics, data_words)])
    sent = 0
    try:
        for start in range(0, len(records), LOGS_PER_TX):
            chunk = records[start : start + LOGS_PER_TX]
            data = "0x" + "".join(_word(v) for record in chunk for v in record)
            sender.send(FUNDER, address, data, f"emit {len(chunk)} logs", gas=30_000_000)
            sent += 1
            if len(sender.pending) >= 8:  # a few per block: each block's logs stay a modest eth_getLogs answer
                sender.mine()
        sender.mine()
    finally:
        rpc.call("anvil_setCode", [address, original])
    return sent


@dataclass
class StateWriter:
    """Writes storage words through anvil_setStorageAt in JSON-RPC batches."""

    rpc: RpcClient
    pending: list[tuple[str, list[Any]]] = field(default_factory=list)
    written: int = 0

    def set(self, address: str, slot: int, value: int) -> None:
        if not 0 <= value < 2**256:
            raise SystemExit(f"storage value out of range for {address} slot {slot:#x}: {value}")
        self.pending.append(("anvil_setStorageAt", [address, "0x" + _word(slot), "0x" + _word(value)]))
        if len(self.pending) >= WRITES_PER_BATCH:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.rpc.batch(self.pending)
            self.written += len(self.pending)
            self.pending = []


def mapping_slot(key: str | int, slot: int) -> int:
    """Solidity's slot of mapping[key] for a mapping at `slot`: keccak256(key . slot)."""
    return int.from_bytes(keccak(bytes.fromhex(_word(key) + _word(slot))), "big")


def _read_uint(rpc: RpcClient, to: str, signature: str, *words: int | str) -> int:
    data = "0x" + keccak(signature.encode())[:4].hex() + "".join(_word(w) for w in words)
    return int(rpc.call("eth_call", [{"to": to, "data": data}, "latest"]), 16)


def probe_mapping(rpc: RpcClient, contract: str, holder: str, expected: int, mask: int = MAX_UINT) -> int:
    """The slot of the address-keyed mapping whose entry for `holder` holds `expected` (in `mask`'s bits): found by
    reading slots 0..199 of `contract` and required to be unique, so a layout guessed wrong stops the load."""
    if not expected:
        raise SystemExit(f"probe of {contract}: the holder's value is 0, nothing to recognise")
    words = rpc.batch([("eth_getStorageAt", [contract, hex(mapping_slot(holder, p)), "latest"]) for p in range(200)])
    found = [p for p, w in enumerate(words) if int(w, 16) & mask == expected]
    if len(found) != 1:
        raise SystemExit(f"probe of {contract}: {len(found)} mapping slots hold {expected} for {holder}")
    return found[0]


def probe_plain(rpc: RpcClient, contract: str, expected: int) -> int:
    """The plain storage slot (0..199) of `contract` holding `expected`, required to be unique."""
    words = rpc.batch([("eth_getStorageAt", [contract, hex(p), "latest"]) for p in range(200)])
    found = [p for p, w in enumerate(words) if int(w, 16) == expected]
    if len(found) != 1:
        raise SystemExit(f"probe of {contract}: {len(found)} slots hold {expected}")
    return found[0]


def _ray_div(a: int, b: int) -> int:
    """WadRayMath.rayDiv: a * RAY / b, half up."""
    return (a * RAY + b // 2) // b


def _aave_reserve(rpc: RpcClient, pool: str, asset: str) -> dict[str, Any]:
    """Pool.getReserveData (3.0.2's ReserveData): the indexes, the reserve id and its tokens."""
    data = rpc.call("eth_call", [{"to": pool, "data": POOL_ABI.encode("getReserveData", asset)}, "latest"])
    (fields,) = POOL_ABI.decode("getReserveData", data)
    names = ["liquidity_index", "variable_borrow_index", "id", "a_token", "variable_debt_token"]
    values = [fields[1], fields[3], fields[7], fields[8].lower(), fields[10].lower()]
    return dict(zip(names, values, strict=True))


@dataclass
class Layout:
    """Storage slots of the devnet's contracts, each found by probing a holder the real transactions made (probe_*)."""

    user_state: (
        int  #: IncentivizedERC20._userState (aToken and variable debt token: UserState {balance, additionalData})
    )
    debt_user_state: int  #: the same mapping in the variable debt token
    a_total: int  #: IncentivizedERC20._totalSupply of the aToken (scaled)
    debt_total: int  #: the variable debt token's _totalSupply (scaled)
    users_config: int  #: Pool._usersConfig
    erc20_balances: int  #: the devnet's MintableERC20 _balances
    erc20_total: int  #: its _totalSupply


def _probe_layout(rpc: RpcClient, pool: str, weth: str, usdc: str, a_weth: str, debt_usdc: str) -> Layout:
    low = 2**128 - 1
    layout = Layout(
        probe_mapping(rpc, a_weth, FUNDER, _read_uint(rpc, a_weth, "scaledBalanceOf(address)", FUNDER), low),
        probe_mapping(rpc, debt_usdc, FUNDER, _read_uint(rpc, debt_usdc, "scaledBalanceOf(address)", FUNDER), low),
        probe_plain(rpc, a_weth, _read_uint(rpc, a_weth, "scaledTotalSupply()")),
        probe_plain(rpc, debt_usdc, _read_uint(rpc, debt_usdc, "scaledTotalSupply()")),
        probe_mapping(rpc, pool, FUNDER, _read_uint(rpc, pool, "getUserConfiguration(address)", FUNDER)),
        probe_mapping(rpc, usdc, FUNDER, _read_uint(rpc, usdc, "balanceOf(address)", FUNDER)),
        probe_plain(rpc, weth, _read_uint(rpc, weth, "totalSupply()")),
    )
    if probe_plain(rpc, usdc, _read_uint(rpc, usdc, "totalSupply()")) != layout.erc20_total:
        raise SystemExit("probe: WETH and USDC keep their total supply in different slots")
    return layout


def _storage_word(rpc: RpcClient, address: str, slot: int) -> int:
    return int(rpc.call("eth_getStorageAt", [address, hex(slot), "latest"]), 16)


def _add_balances(writer: StateWriter, layout: Layout, token: str, deltas: dict[str, int]) -> None:
    """Moves `token` (a MintableERC20) balances by `deltas` and its total supply by their sum, read then written."""
    rpc = writer.rpc
    writer.flush()
    holders = list(deltas)
    for start in range(0, len(holders), WRITES_PER_BATCH):
        chunk = holders[start : start + WRITES_PER_BATCH]
        slots = [mapping_slot(h, layout.erc20_balances) for h in chunk]
        words = rpc.batch([("eth_getStorageAt", [token, hex(s), "latest"]) for s in slots])
        for holder, slot, word in zip(chunk, slots, words, strict=True):
            writer.set(token, slot, int(word, 16) + deltas[holder])
    writer.set(token, layout.erc20_total, _storage_word(rpc, token, layout.erc20_total) + sum(deltas.values()))
    writer.flush()


def _deploy_adaptive_irm(sender: Sender, morpho: str) -> str:
    """chainrisk's stand-in of Morpho's AdaptiveCurveIrm (chainrisk/devnet/standins/morpho_irm), enabled on Morpho:
    the IRM most mainnet markets use, whose rate moves with time while utilization is off its target."""
    contract = standin_contracts("morpho_irm")["AdaptiveCurveIrmStandin"]
    sender.mine()
    sender.send(DEPLOYER, None, Abi(contract.abi).deploy_data(contract.bytecode, morpho), "AdaptiveCurveIrm", 5_000_000)
    sender.mine()
    irm = str(sender.rpc.call("eth_getBlockReceipts", ["latest"])[-1]["contractAddress"]).lower()
    sender.call(DEPLOYER, load_abi("morpho-blue", "IMorpho"), morpho, "enableIrm", irm)
    sender.mine()
    return irm


def _load(manifest: dict[str, Any], args: argparse.Namespace, rng: random.Random) -> dict[str, Any]:
    """Opens the accounts and markets; returns what was opened (the wallets by protocol, for the changes later)."""
    rpc = RpcClient(manifest["rpc_url"])
    head = rpc.call("eth_getBlockByNumber", ["latest", False])
    sender = Sender(rpc, int(head["timestamp"], 16), int(manifest["pid"]))
    writer = StateWriter(rpc)
    morpho_abi = load_abi("morpho-blue", "IMorpho")
    mint_abi = Abi(aave_artifact("MintableERC20").abi)
    tokens, pool = manifest["tokens"], manifest["aave_v3"]["pool"]
    morpho = manifest["morpho_blue"]["morpho"]
    weth, usdc = tokens["WETH"].lower(), tokens["USDC"].lower()
    eth_usd, usdc_unit = 2_000, 10**6  # conservative: the devnet's May 2022 ETH stays above this
    devnet_market = next(
        m for m in manifest["morpho_blue"]["markets"] if (m["collateral_symbol"], m["loan_symbol"]) == ("WETH", "USDC")
    )
    sizes_usd = [rng.uniform(2_000, 40_000) for _ in range(args.accounts + args.morpho_positions)]
    usdc_liquidity = int(sum(sizes_usd) * usdc_unit)

    # Real transactions, few: caps lifted (0 = none, as governance raises them when a market grows), the funder's
    # USDC liquidity on Aave and a small WETH-backed USDC loan of its own (the holder whose storage the probes find).
    configurator = load_abi("aave-v3", "IPoolConfigurator")
    for token in (weth, usdc):
        sender.call(DEPLOYER, configurator, manifest["aave_v3"]["pool_configurator"], "setSupplyCap", token, 0)
        sender.call(DEPLOYER, configurator, manifest["aave_v3"]["pool_configurator"], "setBorrowCap", token, 0)
    for token, amount in ((weth, 10 * WAD), (usdc, 2 * usdc_liquidity)):
        sender.call(FUNDER, mint_abi, token, "mint", amount)
        sender.call(FUNDER, mint_abi, token, "approve", pool, MAX_UINT)
        sender.call(FUNDER, mint_abi, token, "approve", morpho, MAX_UINT)
    sender.call(FUNDER, POOL_ABI, pool, "supply", usdc, usdc_liquidity, FUNDER, 0)
    sender.call(FUNDER, POOL_ABI, pool, "supply", weth, 5 * WAD, FUNDER, 0)
    sender.mine()
    sender.call(FUNDER, POOL_ABI, pool, "borrow", usdc, 1_000 * usdc_unit, 2, 0, FUNDER)
    sender.mine()
    r_weth, r_usdc = _aave_reserve(rpc, pool, weth), _aave_reserve(rpc, pool, usdc)
    layout = _probe_layout(rpc, pool, weth, usdc, r_weth["a_token"], r_usdc["variable_debt_token"])

    # Aave: each wallet's WETH collateral (aWETH scaled balance) and USDC debt (variable debt scaled balance), its
    # configuration bitmap (WETH collateral, USDC borrowed), the tokens' scaled totals; the WETH sits in the aToken,
    # the borrowed USDC left it for the wallet. Then the logs its supply and borrow would have left: aWETH and
    # variable debt Transfer(0 -> wallet) mints, which is how the indexer (and any indexer) finds the account.
    aave_wallets = [_wallet("aave", i) for i in range(args.accounts)]
    config = (1 << (2 * r_usdc["id"])) | (1 << (2 * r_weth["id"] + 1))
    a_records: list[list[int | str]] = []
    debt_records: list[list[int | str]] = []
    weth_in: dict[str, int] = {r_weth["a_token"]: 0}
    usdc_out: dict[str, int] = {r_usdc["a_token"]: 0}
    scaled_a = scaled_debt = 0
    for i, wallet in enumerate(aave_wallets):
        collateral = int(sizes_usd[i] / eth_usd * WAD)
        borrow = int(sizes_usd[i] * 0.805 * rng.uniform(0.3, 0.75) * usdc_unit)
        a_scaled = _ray_div(collateral, r_weth["liquidity_index"])
        d_scaled = _ray_div(borrow, r_usdc["variable_borrow_index"])
        scaled_a += a_scaled
        scaled_debt += d_scaled
        state_a = r_weth["liquidity_index"] << 128 | a_scaled
        writer.set(r_weth["a_token"], mapping_slot(wallet, layout.user_state), state_a)
        state_d = r_usdc["variable_borrow_index"] << 128 | d_scaled
        writer.set(r_usdc["variable_debt_token"], mapping_slot(wallet, layout.debt_user_state), state_d)
        writer.set(pool, mapping_slot(wallet, layout.users_config), config)
        weth_in[r_weth["a_token"]] += collateral
        usdc_out[r_usdc["a_token"]] -= borrow
        usdc_out[wallet] = borrow
        a_records.append([TRANSFER_TOPIC, 0, wallet, collateral])
        debt_records.append([TRANSFER_TOPIC, 0, wallet, borrow])
    for token, slot, added in (
        (r_weth["a_token"], layout.a_total, scaled_a),
        (r_usdc["variable_debt_token"], layout.debt_total, scaled_debt),
    ):
        writer.set(token, slot, _storage_word(rpc, token, slot) + added)
    writer.flush()
    emitted = emit_logs(sender, r_weth["a_token"], 3, 1, a_records)
    emitted += emit_logs(sender, r_usdc["variable_debt_token"], 3, 1, debt_records)
    del a_records, debt_records

    # Morpho: the markets by transaction as on mainnet (the owner enables each LLTV, anyone creates), the funder's
    # loan-token supply to each (real Supply events), then the borrowers written: collateral and borrow shares
    # (fresh markets: shares = assets x 1e6, Morpho's virtual shares), each market's borrow totals, and the logs
    # their supplyCollateral and borrow would have left.
    lltvs = [int(0.70 * WAD) + i * 10**14 + 10**12 for i in range(args.morpho_markets)]
    irm = _deploy_adaptive_irm(sender, morpho) if args.adaptive_irm else devnet_market["irm"]
    params = [(usdc, weth, devnet_market["oracle"], irm, lltv) for lltv in lltvs]
    for lltv in lltvs:
        sender.call(DEPLOYER, morpho_abi, morpho, "enableLltv", lltv)
    sender.mine()
    for market in params:
        sender.call(DEPLOYER, morpho_abi, morpho, "createMarket", market)
    sender.mine()
    ids = ["0x" + keccak(bytes.fromhex("".join(_word(v) for v in p))).hex() for p in params]
    morpho_wallets = [_wallet("morpho", i) for i in range(args.morpho_positions)]
    placed = [rng.randrange(len(params)) for _ in morpho_wallets]
    sizes = sizes_usd[args.accounts :]
    per_market = [0] * len(params)
    for i, index in enumerate(placed):
        per_market[index] += int(sizes[i] * usdc_unit)
    for market, need in zip(params, per_market, strict=True):
        if need:
            sender.call(FUNDER, morpho_abi, morpho, "supply", market, need, 0, FUNDER, b"")
    sender.mine()
    borrowed = [0] * len(params)
    collateral_records: list[list[int | str]] = []
    borrow_records: list[list[int | str]] = []
    weth_in[morpho] = 0
    usdc_out[morpho] = 0
    for i, wallet in enumerate(morpho_wallets):
        index = placed[i]
        collateral = int(sizes[i] / eth_usd * WAD)
        borrow = int(sizes[i] * lltvs[index] / WAD * rng.uniform(0.3, 0.75) * usdc_unit)
        shares = borrow * 10**6
        writer.set(morpho, position_base_slot(ids[index], wallet) + 1, collateral << 128 | shares)
        borrowed[index] += borrow
        weth_in[morpho] += collateral
        usdc_out[morpho] -= borrow
        usdc_out[wallet] = usdc_out.get(wallet, 0) + borrow
        collateral_records.append([SUPPLY_COLLATERAL_TOPIC, ids[index], wallet, wallet, collateral])
        borrow_records.append([BORROW_TOPIC, ids[index], wallet, wallet, wallet, borrow, shares])
    for market_id, total in zip(ids, borrowed, strict=True):
        if total:
            slot = mapping_slot(market_id, MORPHO_MARKET_SLOT) + 1  # Market: totalBorrowAssets | totalBorrowShares
            if _storage_word(rpc, morpho, slot):
                raise SystemExit(f"Morpho market {market_id} already has borrows; the load expects fresh markets")
            writer.set(morpho, slot, (total * 10**6) << 128 | total)
    writer.flush()
    emitted += emit_logs(sender, morpho, 4, 1, collateral_records)
    emitted += emit_logs(sender, morpho, 4, 3, borrow_records)
    del collateral_records, borrow_records
    _add_balances(writer, layout, weth, weth_in)
    _add_balances(writer, layout, usdc, usdc_out)

    # One real transaction per Aave reserve so the pool re-reads its totals and sets its rates from them (a supply
    # runs updateState and updateInterestRates), as the next user action on mainnet would.
    sender.call(FUNDER, POOL_ABI, pool, "supply", weth, 10**15, FUNDER, 0)
    sender.call(FUNDER, POOL_ABI, pool, "supply", usdc, usdc_unit, FUNDER, 0)
    sender.mine()
    rpc.close()
    return {
        "sender": sender,
        "aave": aave_wallets,
        "morpho": list(zip(morpho_wallets, [params[p] for p in placed], strict=True)),
        "morpho_ids": {w: ids[p] for w, p in zip(morpho_wallets, placed, strict=True)},
        "txs": sender.sent,
        "emit_txs": emitted,
        "storage_writes": writer.written,
    }


def _move_price(manifest: dict[str, Any], sender: Sender, percent: float, run: int) -> int:
    """Queues a new round of the devnet's WETH/USD feed, `percent` % down on even runs and back up on odd ones: Aave's
    oracle and every scale market's FeedRatioOracle read it, so every wallet's figures move, as an ETH/USD Chainlink
    round moves a mainnet book. Returns the new answer."""
    feed, abi = manifest["feeds"]["WETH"], Abi(compiled_contracts()["SettableFeed"].abi)
    answer = _read_uint(sender.rpc, feed, "latestAnswer()")  # a positive int256: the same word
    kept = 10_000 - round(percent * 100)  # bps of the answer a move down keeps
    moved = answer * kept // 10_000 if run % 2 == 0 else answer * 10_000 // kept
    sender.call(DEPLOYER, abi, feed, "setAnswer", moved)
    return moved


def _change(
    manifest: dict[str, Any],
    loaded: dict[str, Any],
    changed: int,
    rng: random.Random,
    price_move: float = 0.0,
    run: int = 0,
) -> int | None:
    """`changed` wallets borrow a little more: two thirds of them on Aave, the rest on Morpho; with `price_move`, in the
    same block, the WETH/USD feed's new round (_move_price, whose answer is returned)."""
    sender: Sender = loaded["sender"]
    sender.rpc = RpcClient(manifest["rpc_url"])
    answer = _move_price(manifest, sender, price_move, run) if price_move else None
    pool_abi, morpho_abi = load_abi("aave-v3", "IPool"), load_abi("morpho-blue", "IMorpho")
    usdc = manifest["tokens"]["USDC"]
    on_aave = changed * 2 // 3
    for wallet in rng.sample(loaded["aave"], on_aave):
        sender.call(wallet, pool_abi, manifest["aave_v3"]["pool"], "borrow", usdc, 10 * 10**6, 2, 0, wallet)
    for wallet, market in rng.sample(loaded["morpho"], changed - on_aave):
        sender.call(
            wallet, morpho_abi, manifest["morpho_blue"]["morpho"], "borrow", market, 10 * 10**6, 0, wallet, wallet
        )
    sender.mine()
    sender.rpc.close()
    return answer


def _peak_rss_mib(pid: int, stop: threading.Event, peak: list[int]) -> None:
    while not stop.is_set():
        peak[0] = max(peak[0], _resident_mib(pid, "VmHWM"))
        stop.wait(0.2)


def _measured(command: list[str], what: str, env: dict[str, str] | None = None) -> tuple[str, float, int]:
    """Runs `command` to its end: its stdout, wall seconds and peak resident memory (MiB); exits with `what` failed
    and the end of its stderr when it fails."""
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stop, peak = threading.Event(), [0]
    watcher = threading.Thread(target=_peak_rss_mib, args=(process.pid, stop, peak))
    watcher.start()
    out, err = process.communicate()
    seconds = time.perf_counter() - started
    stop.set()
    watcher.join()
    if process.returncode != 0:
        raise SystemExit(f"{what} failed ({process.returncode}): {err.strip()[-500:]}")
    return out, seconds, peak[0]


#: `--profile DIR`: each run under cProfile, its statistics written to DIR/run-<n>.prof (the times then include the
#: profiler's own overhead; for finding where a run spends its time, not for the figures).
PROFILE: list[Path] = []


def _run(db: Path, state: Path) -> dict[str, Any]:
    """One `chainrisk run --devnet` in its own process: seconds, peak memory, its summary line."""
    env = {**os.environ, "CHAINRISK_STATE_DIR": str(state)}
    command = [sys.executable, "-m", "chainrisk.cli", "run", "--devnet", "--db", str(db)]
    if PROFILE:
        PROFILE[0].mkdir(parents=True, exist_ok=True)
        stats = PROFILE[0] / f"run-{len(list(PROFILE[0].glob('run-*.prof')))}.prof"
        command[1:3] = ["-m", "cProfile", "-o", str(stats), "-m", "chainrisk.cli"]
    out, seconds, peak = _measured(command, "chainrisk run", env)
    summary = out.strip().splitlines()[-1]
    # The run's own time (the line says "run N ok in X s"); `seconds` adds the process's start and imports.
    reported = float(summary.split(" ok in ", 1)[1].split(" s", 1)[0])
    return {
        "seconds": round(seconds, 1),
        "run_reported_s": reported,
        "peak_rss_mib": peak,
        "summary": summary,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def _column_bytes(con: duckdb.DuckDBPyConnection, table: str, per: str | None = None) -> dict[str, float]:
    """Bytes per row (of table `per`, `table` itself when None) of each column of `table` in the file, estimated from
    its segments' places in their blocks (a segment runs to the next one's offset in its block, or to the block's end,
    plus any blocks of its own); checked on a synthetic year: the estimates summed to 60.4 bytes a bucket where the
    file's used blocks gave 60.5."""
    block = int(con.execute("SELECT block_size FROM pragma_database_size() LIMIT 1").fetchall()[0][0])
    rows = con.execute(f"""
WITH segments AS (
    SELECT column_name, block_id, block_offset, len(additional_block_ids) AS extra
    FROM pragma_storage_info('{table}') WHERE block_id >= 0
), sized AS (
    SELECT column_name, coalesce(lead(block_offset) OVER (PARTITION BY block_id ORDER BY block_offset), {block})
        - block_offset + extra * {block} AS bytes
    FROM segments
)
SELECT column_name, sum(bytes) / (SELECT count(*) FROM {per or table}) AS per_row FROM sized GROUP BY 1 ORDER BY 2 DESC
""").fetchall()
    return {str(c): round(float(b), 2) for c, b in rows}


def _publish(db: Path) -> dict[str, Any]:
    """One publish of `db` in its own process (as a run's publish, on a file no process holds): seconds, peak
    memory, what it wrote."""
    code = (
        "import json, sys, duckdb; from pathlib import Path; from chainrisk.store.published import publish\n"
        "with duckdb.connect(sys.argv[1], read_only=True) as con:\n"
        "    r = publish(con, Path(sys.argv[1]))\n"
        "print(json.dumps({'files': r.files, 'mib': round(r.bytes / 2**20, 1), 'rows': r.rows,\n"
        "    'tables': r.tables_written}))"
    )
    out, seconds, peak = _measured([sys.executable, "-c", code, str(db)], "publish")
    written = json.loads(out.strip().splitlines()[-1])
    rewritten = sorted(t for t, how in written.pop("tables").items() if how == "rewrite")
    return {
        "seconds": round(seconds, 1),
        "peak_rss_mib": peak,
        **written,
        "tables_rewritten": rewritten,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def _read_latencies(db: Path, stop: threading.Event, until: int = 0) -> list[float]:
    """Seconds per read of mart_market_summary through the published copy, until `stop` (or `until` reads)."""
    sql, latencies = query_sql("mart_market_summary"), list[float]()
    while not stop.is_set() and (not until or len(latencies) < until):
        started = time.perf_counter()
        with connect_reader(db) as con:
            con.execute(sql).fetchall()
        latencies.append(time.perf_counter() - started)
        time.sleep(0.05)
    return latencies


def _verify(
    db: Path, manifest: dict[str, Any], loaded: dict[str, Any], rng: random.Random, sample: int
) -> dict[str, Any]:
    """Our stored figures against the contracts' own getters at the stored block, for `sample` random wallets of
    each protocol: Aave's wallet_health against Pool.getUserAccountData (collateral, debt, available borrows,
    health factor, exactly), Morpho's raw positions against Morpho.position(id, wallet). Stops on any difference.
    `sample` 0 checks nothing (a profiling run)."""
    if sample <= 0:
        return {"aave_wallets_equal": 0, "morpho_positions_equal": 0, "block": None}
    rpc = RpcClient(manifest["rpc_url"])
    morpho_abi = load_abi("morpho-blue", "IMorpho")
    aave = rng.sample(loaded["aave"], min(sample, len(loaded["aave"])))
    morpho = rng.sample(sorted(loaded["morpho_ids"]), min(sample, len(loaded["morpho_ids"])))
    with duckdb.connect(str(db), read_only=True) as con:
        stored = con.execute(
            "SELECT h.wallet, h.block_number, h.total_collateral_base, h.total_debt_base, h.available_borrows_base, "
            "h.health_factor_wad FROM wallet_health h JOIN sync_state s ON h.protocol = s.protocol "
            "AND h.chain_id = s.chain_id AND h.source = s.market AND h.block_number = s.snapshot_block "
            "WHERE h.protocol = 'aave-v3' AND h.wallet IN (SELECT unnest($1::VARCHAR[]))",
            [aave],
        ).fetchall()
        positions = con.execute(
            "SELECT p.wallet, p.market_id, p.block_number, p.supply_shares, p.borrow_shares, p.collateral "
            "FROM raw_morpho_blue_positions p JOIN sync_state s ON s.protocol = 'morpho-blue' "
            "AND p.chain_id = s.chain_id AND p.market = s.market AND p.block_number = s.snapshot_block "
            "WHERE p.wallet IN (SELECT unnest($1::VARCHAR[]))",
            [morpho],
        ).fetchall()
    if len(stored) != len(aave) or len(positions) != len(morpho):
        raise SystemExit(f"verify: {len(stored)}/{len(aave)} Aave and {len(positions)}/{len(morpho)} Morpho stored")
    pool, target = manifest["aave_v3"]["pool"], manifest["morpho_blue"]["morpho"]
    answers = rpc.batch(
        [("eth_call", [{"to": pool, "data": POOL_ABI.encode("getUserAccountData", r[0])}, hex(r[1])]) for r in stored]
    )
    for row, raw in zip(stored, answers, strict=True):
        collateral, debt, available, _, _, health = POOL_ABI.decode("getUserAccountData", raw)
        ours = tuple(int(v) for v in row[2:])
        if ours != (collateral, debt, available, min(health, HEALTH_WAD_CAP)):
            raise SystemExit(f"verify: Aave {row[0]} at {row[1]}: ours {ours}, the pool's {(collateral, debt, health)}")
    answers = rpc.batch(
        [
            (
                "eth_call",
                [{"to": target, "data": morpho_abi.encode("position", bytes.fromhex(r[1][2:]), r[0])}, hex(r[2])],
            )
            for r in positions
        ]
    )
    for row, raw in zip(positions, answers, strict=True):
        (theirs,) = morpho_abi.decode("position", raw)
        if tuple(int(v) for v in row[3:]) != tuple(theirs):
            raise SystemExit(f"verify: Morpho {row[0]} in {row[1]}: ours {row[3:]}, position() {theirs}")
        if row[1] != loaded["morpho_ids"][row[0]]:
            raise SystemExit(f"verify: Morpho {row[0]} stored in {row[1]}, opened in {loaded['morpho_ids'][row[0]]}")
    rpc.close()
    return {"aave_wallets_equal": len(stored), "morpho_positions_equal": len(positions), "block": stored[0][1]}


def _sizes_mib(db: Path) -> dict[str, float]:
    """The database (with its WAL), what readers are served (the published folder: snapshots' Parquet files and
    catalogs) and the score job's engine book, in MiB."""

    def tree(folder: Path) -> int:
        return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0

    main = sum(p.stat().st_size for p in db.parent.glob(db.name + "*") if p.is_file())
    return {
        "database_mib": round(main / 2**20, 1),
        "published_mib": round(tree(published_dir(db)) / 2**20, 1),
        "score_book_mib": round(tree(db.with_name(db.name + ".scorebook")) / 2**20, 1),
    }


def _published_table_mib(db: Path) -> dict[str, float]:
    """MiB of the Parquet files the current published snapshot reads, per table (schema.table), from its manifest."""
    folder = published_dir(db)
    pointer = folder / "CURRENT"
    manifest = read_manifest(folder / pointer.read_text().strip()) if pointer.is_file() else None
    if manifest is None:
        return {}
    where = Path(manifest.get("folder", folder))
    return {
        table: sum((where / f).stat().st_size for f in entry["files"]) / 2**20
        for table, entry in manifest["tables"].items()
    }


def _row_counts(db: Path) -> dict[str, int]:
    """Rows of every table (main and history schemas), by schema.table."""
    with duckdb.connect(str(db), read_only=True) as con:
        tables = con.execute("SELECT schema_name, table_name FROM duckdb_tables() ORDER BY 1, 2").fetchall()
        return {f"{s}.{t}": int(con.execute(f'SELECT count(*) FROM "{s}"."{t}"').fetchall()[0][0]) for s, t in tables}


def _steady_runs(
    manifest: dict[str, Any],
    loaded: dict[str, Any],
    db: Path,
    state: Path,
    args: argparse.Namespace,
    rng: random.Random,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """`args.runs` steady-state runs five chain minutes apart, `args.changed` wallets changed before each; the first
    with a reader reading throughout (and an idle read series before it). Each run's time, peak and file sizes."""
    runs, latency = [], {}
    stop, during = threading.Event(), list[float]()
    for n in range(args.runs):
        loaded["sender"].timestamp += RUN_EVERY_S - 12  # the change's block lands five minutes after the last
        answer = _change(manifest, loaded, args.changed, rng, args.price_move, n)
        if n == 0:
            latency["reader_latency_idle"] = summary(_read_latencies(db, threading.Event(), until=20))
            reader = threading.Thread(target=lambda: during.extend(_read_latencies(db, stop)))
            reader.start()
            run = _run(db, state)
            stop.set()
            reader.join()
            latency["reader_latency_during_run"] = summary(during)
        else:
            run = _run(db, state)
        runs.append({**run, **_sizes_mib(db), **({"weth_usd_answer": answer} if answer is not None else {})})
        print(f"steady run {n + 1}: {run['summary']}", flush=True)
    return runs, latency


def _day_batches(first: int, end: int, keys: int, hourly_days: int, cold: bool) -> list[tuple[int, int]]:
    """The year's days (`first` up to `end`, day numbers) in the batches the construction inserts: one batch when the
    whole year is built in the database; with cold days, batches of about BATCH_BUCKETS buckets (a day holds an hour
    bucket a key for the newest `hourly_days` + 1 days, a day bucket before), each moved out before the next."""
    if not cold:
        return [(first, end)]
    batches, low = [], first
    while low < end:
        high, buckets = low, 0
        while high < end and (
            high == low or buckets + keys * (24 if end - high <= hourly_days + 1 else 1) <= BATCH_BUCKETS
        ):
            buckets += keys * (24 if end - high <= hourly_days + 1 else 1)
            high += 1
        batches.append((low, high))
        low = high
    return batches


def _simulate_year(
    db: Path, state: Path, before: dict[str, int], runs: int, args: argparse.Namespace
) -> dict[str, Any]:
    """A year of five-minute runs written directly, then one real run on top of it.

    What a year leaves, constructed from what the measured steady runs left:
    - history.<raw table> (raw state by change): the version rows the `runs` measured runs added, per run, copied
      for every earlier run of the year (YEAR_RUNS - runs of them), each copy's blocks shifted back by the blocks
      between runs and closed (valid_to_block set): a year at the measured change rate;
    - snapshot_blocks and the raw event tables (raw_*_events): likewise, the rows per run copied, blocks shifted;
    (in every copy the non-key figures, amounts, indexes, prices, are offset by the copy's number, so that a year's
    values are not identical copies that would compress unrealistically well; the copies' blocks are below the
    devnet's block 0, negative numbers, clear of its own rows, which changes nothing in size or in what a run reads:
    the copies are closed versions);
    - wallet_health_history: for `--year-wallets` of the wallets stored now (all when 0), every bucket a year of
      runs leaves with [storage] hourly_days = 90: an hour bucket for each of the 90 days' hours before the stored
      one, then a day bucket for each of the 275 days before (12 samples an hour, 288 a day; the figures are the
      stored ones with a varying health factor (and its exact figure), collateral, debt and borrowing power, as
      prices move them, so the
      columns do not compress unrealistically well), inserted in time order, as a year of runs appends them, each
      finished day's hour buckets by key, as the run after that day stores them again.
    Tables that grew during the measured runs are listed with their growth (`rows_grown_in_measured_runs`); those
    without a block_number (runs: one row a run) are not constructed."""
    after = _row_counts(db)
    grown = {t: after[t] - before.get(t, 0) for t in after if after[t] > before.get(t, 0)}
    copies = YEAR_RUNS - runs
    made = int(copies * args.year_share) // runs  # copies of the measured runs' rows constructed
    blocks_per_run = RUN_EVERY_S // 12
    before_sizes = _sizes_mib(db)
    published_before = _published_table_mib(db)
    started = time.perf_counter()
    with duckdb.connect(str(db)) as con:
        first, last = con.execute("SELECT min(block_number), max(block_number) FROM snapshot_blocks").fetchall()[0]
        span = blocks_per_run * runs  # notional blocks of the measured runs; each copy takes as many
        if last - first >= span:
            raise SystemExit(f"the measured runs took {last - first} blocks, more than the {span} a copy is given")
        constructed: dict[str, int] = {}
        for table, added in grown.items():
            name = table.split(".", 1)[1]
            types = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {table})").fetchall())
            if "block_number" not in types or name == "wallet_health_history":
                continue
            try:
                keys = set(key_columns(con, name))
            except ValueError:
                keys = set(types)  # no key known: nothing varied
            shift = f"({last + 1} + (k - 1) * {span})"  # copies below block 0: clear of the chain's own rows
            replaced = [f"block_number - {shift} AS block_number"]
            if "valid_to_block" in types:
                closed = f"coalesce(valid_to_block, block_number + {blocks_per_run})"
                replaced.append(f"{closed} - {shift} AS valid_to_block")
            if "block_timestamp" in types:
                replaced.append(f"block_timestamp - k * {RUN_EVERY_S * runs} AS block_timestamp")
            # State figures (amounts, indexes, prices) differ from copy to copy, as a year's values would.
            varied = [
                c
                for c, t in types.items()
                if t in ("HUGEINT", "BIGINT", "DOUBLE")
                and c not in keys
                and c not in SNAPSHOT_COLUMNS
                and c != "valid_to_block"
            ]
            replaced += [f'"{c}" + k AS "{c}"' for c in varied]
            con.execute(
                f"INSERT INTO {table} SELECT * EXCLUDE (k) REPLACE ({', '.join(replaced)}) FROM "
                f"(SELECT * FROM {table} WHERE block_number > {first}), range(1, {made + 1}) r(k)"
            )
            constructed[table] = added * made
        con.execute("CHECKPOINT")
        raw_s = time.perf_counter() - started
        raw_sizes = _sizes_mib(db)
        wallets = con.execute(
            "SELECT DISTINCT protocol, chain_id, market, wallet FROM wallet_health_history ORDER BY ALL"
        ).fetchall()
        limit = args.year_wallets or len(wallets)
        con.execute(
            f"CREATE TEMP TABLE year_keys AS SELECT * FROM (SELECT DISTINCT protocol, chain_id, market, wallet "
            f"FROM wallet_health_history ORDER BY ALL) LIMIT {limit}"
        )
        hourly = HistorySettings().hourly_days * 24
        days = 365 - HistorySettings().hourly_days
        before_rows = int(con.execute("SELECT count(*) FROM wallet_health_buckets").fetchall()[0][0])
        # The day of the newest stored bucket: the days before it are finished, their hours stored by key
        # (chainrisk.store.history._cluster_finished_days), the newest day's in time order.
        today = int(con.execute("SELECT max(bucket_start) // 86400 FROM wallet_health_buckets").fetchall()[0][0])
        first_day = today - 366
        # Each key's first stored bucket, the one its year is built back from (read once: with --year-cold the
        # history view reads the cold files the batches leave).
        con.execute("""
CREATE TEMP TABLE year_latest AS
SELECT k.key_id, h.* FROM wallet_health_history h
JOIN wallet_health_keys k USING (protocol, chain_id, market, wallet)
SEMI JOIN year_keys USING (protocol, chain_id, market, wallet)
QUALIFY row_number() OVER (PARTITION BY protocol, chain_id, market, wallet ORDER BY bucket_start) = 1
""")
        initial_rows = before_rows
        low_start, high_start = con.execute("SELECT min(bucket_start), max(bucket_start) FROM year_latest").fetchall()[
            0
        ]
        moved = {"days": 0, "seconds": 0.0}
        batches = _day_batches(first_day, today + 1, limit, hourly // 24, args.year_cold)
        for low, high in batches:
            con.execute("BEGIN")
            con.execute(f"""
INSERT INTO wallet_health_buckets BY NAME
WITH latest AS (
    SELECT * FROM year_latest
), steps AS (
    SELECT j, CASE WHEN j <= {hourly} THEN j * 3600 ELSE {hourly} * 3600 + (j - {hourly}) * 86400 END AS back,
        CASE WHEN j <= {hourly} THEN 3600 ELSE 86400 END AS seconds
    FROM range(1, {hourly + days + 1}) t(j)
), buckets AS ( -- the steps that reach the batch's days from some key's first bucket
    SELECT * FROM steps WHERE ({high_start} - back) // 86400 >= {low} AND ({low_start} - back) // 86400 < {high}
), built AS (
SELECT * EXCLUDE (j, back, seconds, protocol, market, wallet) REPLACE (
    CASE WHEN j <= {hourly} THEN bucket_start - back ELSE ((bucket_start - back) // 86400) * 86400 END AS bucket_start,
    seconds AS bucket_seconds, seconds // {RUN_EVERY_S} AS samples,
    first_block - back // 12 AS first_block, first_timestamp - back AS first_timestamp,
    first_block - back // 12 + seconds // 12 - {blocks_per_run} AS last_block,
    first_timestamp - back + seconds - {RUN_EVERY_S} AS last_timestamp,
    health_factor * (1 + ((hash(wallet, j) % 2001)::BIGINT - 1000) / 20000.0) AS health_factor,
    CASE WHEN health_factor_wad < 10::HUGEINT ** 37 -- the exact figure varying with it (a capped one stays capped)
        THEN health_factor_wad * (19000 + (hash(wallet, j) % 2001)::BIGINT) // 20000 ELSE health_factor_wad END
        AS health_factor_wad,
    collateral_usd * (1 + ((hash(wallet, j, 4) % 2001)::BIGINT - 1000) / 20000.0) AS collateral_usd,
    debt_usd * (1 + ((hash(wallet, j, 5) % 2001)::BIGINT - 1000) / 20000.0) AS debt_usd,
    borrowing_power_usd * (1 + ((hash(wallet, j, 6) % 2001)::BIGINT - 1000) / 20000.0) AS borrowing_power_usd,
    health_factor_min * (1 - (hash(wallet, j, 1) % 500)::BIGINT / 10000.0) AS health_factor_min,
    health_factor_max * (1 + (hash(wallet, j, 2) % 500)::BIGINT / 10000.0) AS health_factor_max,
    first_block - back // 12 + (hash(wallet, j, 3) % (seconds // 12))::BIGINT AS health_factor_min_block,
    0 AS liquidatable_samples
)
FROM latest, buckets
)
SELECT {ENCODE} FROM built -- blocks and times as stored (chainrisk.store.schema.history)
WHERE bucket_start // 86400 >= {low} AND bucket_start // 86400 < {high}
ORDER BY bucket_start // 86400, CASE WHEN bucket_seconds = 3600 AND bucket_start // 86400 < {today} THEN 0
    ELSE bucket_start END, key_id, bucket_start
""")
            constructed["main.wallet_health_history"] = (
                constructed.get("main.wallet_health_history", 0)
                + int(con.execute("SELECT count(*) FROM wallet_health_buckets").fetchall()[0][0])
                - before_rows
            )
            # The year's runs would have kept the buckets' ledger as they wrote them (chainrisk.store.ledger).
            ledger.rebuild(con, BUCKETS)
            if args.year_cold:
                # The batch's finished days leave for cold files, by the code's own eviction, as the year's runs
                # moved them day by day: the database never holds more than a batch.
                started_moving = time.perf_counter()
                folder = published_dir(db).absolute() / COLD_DATA
                chains = [int(r[0]) for r in con.execute("SELECT DISTINCT chain_id FROM wallet_health_keys").fetchall()]
                moved["days"] += sum(evict_days(con, folder, c, HistorySettings()) for c in chains)
                # The months out of the hourly window, a file each, as the runs keep them (compact_months).
                window = HistorySettings().hourly_seconds
                for c in chains:
                    newest = con.execute(
                        "SELECT max(bucket_start + last_offset) FROM wallet_health_buckets WHERE chain_id = ?", [c]
                    ).fetchall()[0][0]
                    compact_months(con, folder, c, (int(newest) - window) // 86400 * 86400)
                refresh_cold_view(con, folder)
                moved["seconds"] += time.perf_counter() - started_moving
            before_rows = int(con.execute("SELECT count(*) FROM wallet_health_buckets").fetchall()[0][0])
            con.execute("COMMIT")
            con.execute("CHECKPOINT")
            print(f"  year: days {low - first_day}..{high - first_day} of 367 built", flush=True)
        con.execute("DROP TABLE year_latest")
        buckets_stored = int(con.execute("SELECT count(*) FROM wallet_health_buckets").fetchall()[0][0])
        by_column = _column_bytes(con, "wallet_health_buckets")
        by_column |= {
            f"wallet_health_keys.{c}": b
            for c, b in _column_bytes(con, "wallet_health_keys", per="wallet_health_buckets").items()
        }
    build_s = time.perf_counter() - started
    sizes = _sizes_mib(db)
    # The year's runs would each have published what they wrote: the publisher's manifest then accounts for every
    # constructed row. One publish of the constructed file leaves the folder so; it writes the tables the
    # construction grew whole, as a real run does once a day when it folds a day of hour buckets into day buckets
    # (a deletion: chainrisk.store.published rewrites the history), so its time and peak memory are that run's.
    publish_whole = _publish(db)
    published_after = _published_table_mib(db)
    run = _run(db, state)
    sizes_after = _sizes_mib(db)
    # The run on top moved the finished days older than [storage] hot_days out of the database into cold files
    # (chainrisk.store.history.evict_days), as a year of runs would have day by day.
    published_run = _published_table_mib(db)
    with duckdb.connect(str(db), read_only=True) as con:
        hot_rows = int(con.execute("SELECT count(*) FROM wallet_health_buckets").fetchall()[0][0])
        listed = con.execute(
            "SELECT count(DISTINCT file), coalesce(sum(row_count), 0), count(*) FROM cold_history_files"
        ).fetchall()[0]
        cold_folder = published_dir(db) / COLD_DATA
        cold_paths = [
            cold_folder / str(r[0]) for r in con.execute("SELECT DISTINCT file FROM cold_history_files").fetchall()
        ]
    cold_mib = sum(p.stat().st_size for p in cold_paths) / 2**20
    health_rows_per_wallet = constructed["main.wallet_health_history"] / max(limit, 1)
    # The whole year from the parts constructed: raw history grows with the runs, health buckets with the keys.
    base = before_sizes["database_mib"]
    raw_mib = raw_sizes["database_mib"] - base
    health_mib = sizes["database_mib"] - raw_sizes["database_mib"]
    raw_factor, key_factor = copies / max(made * runs, 1), len(wallets) / max(limit, 1)
    year_mib = base + raw_mib * raw_factor + health_mib * key_factor
    # What readers are served, the same way: each table's Parquet grown by the construction, scaled as its rows were
    # (the health buckets and their keys with the keys, the rest with the runs).
    published_growth = {t: mib - published_before.get(t, 0.0) for t, mib in published_after.items()}
    by_keys = {BUCKETS, "main.wallet_health_keys"}
    published_year_mib = before_sizes["published_mib"] + sum(
        grown * (key_factor if table in by_keys else raw_factor)
        for table, grown in published_growth.items()
        if grown > 0
    )
    # With cold days (what the code does now): the database keeps the buckets of the recent days only (at the bytes
    # a bucket took in it), the published folder every bucket (the cold files and the recent days' Parquet).
    bucket_bytes = health_mib * 2**20 / max(constructed["main.wallet_health_history"], 1)
    hot_constructed = max(hot_rows - initial_rows, 0)
    cold_year_db_mib = base + raw_mib * raw_factor + hot_constructed * key_factor * bucket_bytes / 2**20
    raw_published = sum(g * raw_factor for t, g in published_growth.items() if g > 0 and t not in by_keys)
    recent_published = max(published_run.get(BUCKETS, 0.0) - published_before.get(BUCKETS, 0.0), 0.0)
    cold_year_published_mib = before_sizes["published_mib"] + raw_published + (cold_mib + recent_published) * key_factor
    all_days: dict[str, float] | None = {
        "database_gib": round(year_mib / 1024, 1),
        "published_gib": round(published_year_mib / 1024, 1),
        "total_gib": round((year_mib + published_year_mib) / 1024, 1),
    }
    if args.year_cold:
        # Every key's year measured, on disk after the run on top; only the raw history's runs not constructed are
        # added, at the bytes the constructed ones took in the database and in the published folder. The buckets
        # never were all in the database, so there is no all-days figure.
        raw_grown = sum(g for t, g in published_growth.items() if g > 0 and t not in by_keys)
        cold_year_db_mib = sizes_after["database_mib"] + raw_mib * (raw_factor - 1)
        cold_year_published_mib = sizes_after["published_mib"] + raw_grown * (raw_factor - 1)
        all_days = None
    # The Wallet page's own query for 20 of the year's wallets, through the published snapshot, cold files included.
    history_reads = wallet_reads(db, [str(w[3]) for w in wallets[:: max(len(wallets) // 20, 1)][:20]])
    return {
        "what": (
            f"a year = {YEAR_RUNS:,} five-minute runs; raw history, raw events and snapshot_blocks copied from the "
            f"{runs} measured runs' rows for {made * runs:,} of the year's other {copies:,} runs; "
            f"wallet_health_history buckets for {limit:,} of "
            f"{len(wallets):,} wallet-market keys (hour buckets for 90 days, day buckets for 275)"
        ),
        "rows_grown_in_measured_runs": grown,
        "rows_constructed": constructed,
        "health_history_buckets_per_key": round(health_rows_per_wallet, 1),
        "construct_raw_s": round(raw_s, 1),
        "after_raw_history": raw_sizes,
        "construct_s": round(build_s, 1),
        "after_construction": sizes,
        "health_history_bytes_per_bucket": None  # with --year-cold the buckets left: the cold files' figure below
        if args.year_cold
        else round(health_mib * 2**20 / max(constructed["main.wallet_health_history"], 1), 1),
        "health_history_buckets_stored": buckets_stored,
        "health_history_bytes_per_bucket_by_column": by_column,
        "publish_whole_year": publish_whole,
        "run_on_top": {**run, **sizes_after},
        "keys": len(wallets),
        "keys_with_a_year": limit,
        "year_share_of_raw_history": args.year_share,
        "before_construction": before_sizes,
        "published_growth_mib_by_table": {t: round(g, 1) for t, g in published_growth.items() if g > 0},
        "all_days_in_the_database": all_days,
        "year_cold": {"batches": len(batches), "days_moved": moved["days"], "move_s": round(moved["seconds"], 1)}
        if args.year_cold
        else None,
        "wallet_page_history_reads": history_reads,
        "cold_days_after_the_run_on_top": {
            "buckets_left_in_the_database": hot_rows,
            "cold_files": int(listed[0]),
            "cold_days": int(listed[2]),
            "cold_buckets": int(listed[1]),
            "cold_mib": round(cold_mib, 1),
            "cold_bytes_per_bucket": round(cold_mib * 2**20 / max(int(listed[1]), 1), 1),
            "recent_days_published_mib": round(recent_published, 1),
        },
        "whole_year_database_gib_extrapolated": round(cold_year_db_mib / 1024, 1),
        "whole_year_published_gib_extrapolated": round(cold_year_published_mib / 1024, 1),
        "whole_year_total_gib_extrapolated": round((cold_year_db_mib + cold_year_published_mib) / 1024, 1),
        "extrapolation": (
            "database before + raw-history growth x (year's runs / runs constructed) + health-history growth x "
            "(keys / keys constructed); the published folder (the current snapshot's Parquet, which readers are "
            "served) the same way, table by table from its manifest; the total is both. all_days_in_the_database: "
            "every bucket kept in the database too (before cold days); the whole_year figures: with cold days, the "
            "database holding the recent days' buckets left after the run on top (at the bytes a bucket took in it), "
            "the folder every bucket (cold files and the recent days' Parquet), scaled by the keys"
        )
        if not args.year_cold
        else (
            "--year-cold: every key's buckets built and moved to cold files by the code, measured on disk after the "
            "run on top (database and published folder); only the raw history of the runs not constructed is added, "
            "at the bytes the constructed runs' rows took (raw-history growth x (year's runs / runs constructed - 1))"
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=200_000, help="Aave V3 borrowers written to the chain")
    parser.add_argument("--morpho-markets", type=int, default=1_000)
    parser.add_argument("--morpho-positions", type=int, default=50_000)
    parser.add_argument("--changed", type=int, default=300, help="wallets that borrow more before each steady run")
    parser.add_argument("--runs", type=int, default=10, help="steady-state runs measured, five chain minutes apart")
    parser.add_argument("--verify", type=int, default=200, help="wallets per protocol checked against the contracts")
    parser.add_argument(
        "--year-wallets", type=int, default=10_000, help="wallet-market keys given a year of health buckets (0: all)"
    )
    parser.add_argument(
        "--year-share", type=float, default=1.0, help="share of the year's runs whose raw rows are made"
    )
    parser.add_argument(
        "--year-cold",
        action="store_true",
        help="build the health history in batches of days, each moved to cold files by the code's own eviction "
        "(a year of every key on a disk that cannot hold it in the database); needs --year-wallets 0",
    )
    parser.add_argument(
        "--adaptive-irm",
        action="store_true",
        help="Morpho markets under chainrisk's stand-in of Morpho's AdaptiveCurveIrm (its rate moves with time, as "
        "most mainnet markets' does) instead of the devnet's kinked IRM",
    )
    parser.add_argument(
        "--price-move",
        type=float,
        default=0.0,
        help="before each steady run, the WETH/USD feed moves by this many percent (down, then back up, in turns): "
        "every wallet and market is valued anew, as a mainnet ETH/USD round does (0: prices unchanged)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--output", help="results file name in benchmarks/results (default scale-ACCOUNTS.json)", default=None
    )
    parser.add_argument(
        "--profile", type=Path, help="each run under cProfile, statistics to this folder (no results saved, no year)"
    )
    parser.add_argument(
        "--keep",
        type=Path,
        help="a new folder to leave the chain state, the database and its published folder in (read later: "
        "benchmarks/wallet_page.py) instead of a temporary one",
    )
    args = parser.parse_args()
    if args.year_cold and args.year_wallets:
        parser.error("--year-cold builds every key's year: use it with --year-wallets 0")
    if args.profile:
        PROFILE.append(args.profile.resolve())
    rng = random.Random(args.seed)
    if args.keep is not None:
        if args.keep.exists():
            parser.error(f"--keep {args.keep}: the folder exists; name a new one")
        args.keep.mkdir(parents=True)
    workspace = (
        contextlib.nullcontext(str(args.keep))
        if args.keep is not None
        else tempfile.TemporaryDirectory(dir=os.environ.get("SCALE_TMP"))
    )
    with workspace as folder:
        state = Path(folder)
        # Only the last states in anvil's memory (--prune-history): the bulk is storage written, not transactions.
        options = DevnetOptions(
            50, 1, args.seed, free_port(), parse_start("2022-05-01"), 24, anvil_args=("--prune-history", "256")
        )
        manifest = build_devnet(options, state / "devnet", detach=False)
        pid = int(manifest["pid"])
        try:
            started = time.perf_counter()
            loaded = _load(manifest, args, rng)
            load_seconds = time.perf_counter() - started
            anvil_mib = _resident_mib(pid)
            print(f"loaded in {load_seconds:.0f} s; anvil {anvil_mib} MiB", flush=True)
            db = state / "scale.duckdb"
            first = {**_run(db, state), **_sizes_mib(db)}
            print(f"first run: {first['summary']}", flush=True)
            verified = _verify(db, manifest, loaded, rng, args.verify)
            before = _row_counts(db)
            runs, latency = _steady_runs(manifest, loaded, db, state, args, rng)
            # Again after the steady runs: they reread only the accounts events named, the rest from stored rows.
            verified_after = _verify(db, manifest, loaded, rng, args.verify)
            growth = [b["database_mib"] - a["database_mib"] for a, b in zip([first, *runs], runs, strict=False)]
            result: dict[str, Any] = {
                "command": (
                    f"python benchmarks/scale.py --accounts {args.accounts} --morpho-markets {args.morpho_markets} "
                    f"--morpho-positions {args.morpho_positions} --changed {args.changed} --runs {args.runs} "
                    f"--verify {args.verify} --year-wallets {args.year_wallets} --year-share {args.year_share} "
                    f"--seed {args.seed}"
                    + (" --year-cold" if args.year_cold else "")
                    + (" --adaptive-irm" if args.adaptive_irm else "")
                    + (f" --price-move {args.price_move:g}" if args.price_move else "")
                    + (f" --output {args.output}" if args.output else "")
                ),
                "chain": {
                    "aave_accounts": args.accounts,
                    "morpho_markets": args.morpho_markets,
                    "morpho_positions": args.morpho_positions,
                    "real_txs": loaded["txs"],
                    "log_emitting_txs": loaded["emit_txs"],
                    "storage_writes": loaded["storage_writes"],
                    "load_s": round(load_seconds, 1),
                    "anvil_mib_after_load": anvil_mib,
                },
                "first_run": first,
                "verified_against_contracts": verified,
                "verified_after_steady_runs": verified_after,
                "steady_state_runs": runs,
                "steady_state_run": {**runs[-1], "changed_wallets": args.changed},
                "steady_growth_mib_per_run": [round(g, 1) for g in growth],
                **latency,
                "goals": {
                    "steady_state_under_60_s": max(r["seconds"] for r in runs) < 60,
                    "steady_state_under_4_gib": max(r["peak_rss_mib"] for r in runs) < 4096,
                },
                "cpu_count": os.cpu_count(),
            }
            if PROFILE:  # profiled runs are slower than users' runs: their figures are not results
                print(json.dumps(result, indent=2), f"\nprofiles in {PROFILE[0]}; nothing saved to {RESULTS}")
                return
            _save(result, args)  # kept should the year's construction not finish
            year = _simulate_year(db, state, before, args.runs, args)
            result["simulated_year"] = year
            # Storage is the database and the copies readers are served, as in the growth figures.
            result["goals"]["year_under_50_gb_extrapolated"] = year["whole_year_total_gib_extrapolated"] * 2**30 < 50e9
            result["chain"]["anvil_peak_mib"] = _resident_mib(pid, "VmHWM")
        finally:
            stop_process(pid)
    _save(result, args)
    print(json.dumps(result, indent=2))


def _save(result: dict[str, Any], args: argparse.Namespace) -> None:
    result["load_average_at_end"] = os.getloadavg()
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = args.output or f"scale-{args.accounts}.json"
    (RESULTS / name).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
