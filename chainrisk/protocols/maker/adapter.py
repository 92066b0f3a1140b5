"""Maker/Sky as a protocol adapter: from the ChainLog to the Vat, Spotter, Jug, Dog, CDP manager and IlkRegistry;
urns from the manager's NewCdp events, the Vat's own LibNote logs and an optional list; state at the pinned block
through a lens; each ilk's Clipper auctions from their logs and sales. Raw tables: raw_maker_events, raw_maker_ilks,
raw_maker_urns, raw_maker_auctions."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, ClassVar

import polars as pl

from chainrisk.protocols.adapter import Adapter, LogQuery, Preset, Setting, SettingsTable, Snapshot
from chainrisk.protocols.frames import markets_frame
from chainrisk.protocols.maker import accrual, auctions, normalise
from chainrisk.protocols.maker.constants import PRESETS
from chainrisk.protocols.maker.events import (
    BARK,
    CLIP_EVENTS,
    CLIP_FILE_TOPICS,
    DOG_FILE_TOPICS,
    FILE_NOTE_TOPICS,
    NEW_CDP,
    NOTE_TOPICS,
    URN_EVENTS,
    decode_log,
    kicks,
)
from chainrisk.protocols.maker.snapshot import ZERO, Deployment, discover, discover_urns, read_ilks
from chainrisk.protocols.quality import data_quality_frame
from chainrisk.rpc import RpcClient

DDL = """
CREATE TABLE IF NOT EXISTS raw_maker_events (
    chain_id BIGINT NOT NULL,
    market VARCHAR NOT NULL,
    block_number BIGINT NOT NULL,
    block_hash VARCHAR NOT NULL,
    tx_hash VARCHAR NOT NULL,
    log_index INTEGER NOT NULL,
    event VARCHAR NOT NULL,
    ilk VARCHAR, ilk_name VARCHAR, urn VARCHAR, dst VARCHAR, cdp_id BIGINT, owner VARCHAR, sender VARCHAR,
    dink HUGEINT, dart HUGEINT,
    PRIMARY KEY (chain_id, market, block_number, log_index)
);
-- A Dog Bark's exact debt (since stop 51; earlier files' events have none: their grabs keep the rate's estimate).
ALTER TABLE raw_maker_events ADD COLUMN IF NOT EXISTS due_dai HUGEINT;
-- A Bark's auction, and the keeper it credits with its incentive from the Clipper's Kick (since stop 52); a Take's
-- buyer, the transaction's sender (since stop 55; earlier files' takes have none).
ALTER TABLE raw_maker_events ADD COLUMN IF NOT EXISTS clip VARCHAR;
ALTER TABLE raw_maker_events ADD COLUMN IF NOT EXISTS auction_id HUGEINT;
ALTER TABLE raw_maker_events ADD COLUMN IF NOT EXISTS keeper VARCHAR;
ALTER TABLE raw_maker_events ADD COLUMN IF NOT EXISTS keeper_incentive_dai HUGEINT;
-- The Bark's auction tab (due x chop, the debt plus the liquidation penalty) from its Kick (since stop 53).
ALTER TABLE raw_maker_events ADD COLUMN IF NOT EXISTS auction_tab_dai HUGEINT;
-- The auctions themselves (since stop 54): the Clipper's Take, Redo and Yank, and the Kick's top and lot on the bark.
ALTER TABLE raw_maker_events ADD COLUMN IF NOT EXISTS auction_price HUGEINT;
ALTER TABLE raw_maker_events ADD COLUMN IF NOT EXISTS auction_owe_dai HUGEINT;
ALTER TABLE raw_maker_events ADD COLUMN IF NOT EXISTS auction_lot HUGEINT;
ALTER TABLE raw_maker_events ADD COLUMN IF NOT EXISTS auction_followed BOOLEAN;
-- Governance's files of an ilk's settings (since stop 59): the setting filed.
ALTER TABLE raw_maker_events ADD COLUMN IF NOT EXISTS what VARCHAR;

CREATE TABLE IF NOT EXISTS raw_maker_ilks (
    chain_id BIGINT NOT NULL,
    market VARCHAR NOT NULL,
    block_number BIGINT NOT NULL,
    ilk VARCHAR NOT NULL, ilk_hex VARCHAR NOT NULL,
    gem VARCHAR, symbol VARCHAR, gem_decimals INTEGER, "join" VARCHAR, join_dec INTEGER, pip VARCHAR, clip VARCHAR,
    art_total HUGEINT, rate HUGEINT, rate_dripped HUGEINT, spot HUGEINT,
    -- rad figures (1e45 per dai) pass HUGEINT's reach: exact as decimal strings, and in dai as doubles
    line VARCHAR, line_dai DOUBLE, dust VARCHAR, dust_dai DOUBLE, debt VARCHAR, debt_dai DOUBLE, line_used DOUBLE,
    mat HUGEINT, liquidation_ratio DOUBLE, duty HUGEINT, rho BIGINT, base HUGEINT, fee_per_year DOUBLE,
    chop HUGEINT, penalty DOUBLE, hole VARCHAR, dirt VARCHAR, hole_room_dai DOUBLE, global_hole VARCHAR,
    global_dirt VARCHAR, global_room_dai DOUBLE, liquidation_room_dai DOUBLE, par HUGEINT,
    price_method VARCHAR, price HUGEINT, price_has BOOLEAN, price_next HUGEINT, price_next_has BOOLEAN,
    next_price_at BIGINT, spot_at_price HUGEINT, spot_next HUGEINT, price_usd DOUBLE, price_next_usd DOUBLE,
    urns INTEGER,
    PRIMARY KEY (chain_id, market, block_number, ilk_hex)
);

CREATE TABLE IF NOT EXISTS raw_maker_urns (
    chain_id BIGINT NOT NULL,
    market VARCHAR NOT NULL,
    block_number BIGINT NOT NULL,
    ilk VARCHAR NOT NULL, ilk_hex VARCHAR NOT NULL, urn VARCHAR NOT NULL, owner VARCHAR, cdp_id BIGINT,
    found_by VARCHAR NOT NULL, ink HUGEINT NOT NULL, art HUGEINT NOT NULL, ink_gem_units HUGEINT,
    debt VARCHAR, debt_dai DOUBLE, debt_dripped VARCHAR, debt_dripped_dai DOUBLE, collateral_dai DOUBLE,
    health_factor_wad HUGEINT, safe BOOLEAN, safe_after_drip BOOLEAN, safe_at_next_price BOOLEAN,
    liquidation_price HUGEINT, liquidation_price_usd DOUBLE, bark_refusal VARCHAR, bark_dart HUGEINT,
    bark_dink HUGEINT, bark_due_dai DOUBLE, bark_tab_dai DOUBLE, penalty_dai DOUBLE, bad_debt_dai DOUBLE,
    PRIMARY KEY (chain_id, market, block_number, ilk_hex, urn)
);
-- What Dog.bark would grab now, exactly: its due (dart x rate) in dai's smallest unit (since stop 51)
ALTER TABLE raw_maker_urns ADD COLUMN IF NOT EXISTS bark_due HUGEINT;
-- The keeper's incentive: each ilk's clip tip and chip, and what a bark's kick would pay now (since stop 52).
ALTER TABLE raw_maker_ilks ADD COLUMN IF NOT EXISTS clip_tip VARCHAR;
ALTER TABLE raw_maker_ilks ADD COLUMN IF NOT EXISTS clip_tip_dai DOUBLE;
ALTER TABLE raw_maker_ilks ADD COLUMN IF NOT EXISTS clip_chip HUGEINT;
ALTER TABLE raw_maker_urns ADD COLUMN IF NOT EXISTS bark_incentive HUGEINT;
-- The tab a bark's auction would raise now, exactly (since stop 53): the due plus the penalty.
ALTER TABLE raw_maker_urns ADD COLUMN IF NOT EXISTS bark_tab HUGEINT;
-- Each ilk's clip's auction settings (since stop 58): buf and cusp [ray], tail [s].
ALTER TABLE raw_maker_ilks ADD COLUMN IF NOT EXISTS clip_buf HUGEINT;
ALTER TABLE raw_maker_ilks ADD COLUMN IF NOT EXISTS clip_tail BIGINT;
ALTER TABLE raw_maker_ilks ADD COLUMN IF NOT EXISTS clip_cusp HUGEINT;
"""
DDL += auctions.DDL

#: The settings governance files per ilk (dss: the Vat's line and dust in rad, the Spotter's mat in ray and pip, the
#: Jug's per-second duty in ray, the Dog's chop in wad, hole in rad and clip, the Clipper's tip in rad, chip in wad,
#: buf and cusp in ray and tail in seconds), as raw_maker_ilks stores them (rads as decimal strings): their changes,
#: stg_maker_parameter_changes. The Vat's and the Dog's global Line and Hole are not among them.
_RAD_DAI = ("dai", "45")
SETTINGS = (
    SettingsTable(
        "raw_maker_ilks",
        "ilk",
        "ilk",
        "ilk",
        (
            *(Setting(column, *_RAD_DAI) for column in ("line", "dust", "hole", "clip_tip")),
            Setting("mat", "percent", "25"),
            Setting("chop", "percent", "16"),
            Setting("clip_chip", "percent", "16"),
            *(Setting(column, "percent", "25") for column in ("clip_buf", "clip_cusp")),
            Setting("clip_tail", "seconds"),
            Setting("duty", "percent a year", amount="(power(duty::DOUBLE / 1e27, 31536000) - 1) * 100"),
            Setting("pip"),
            Setting("clip"),
        ),
        market="ilk",
    ),
)


class MakerAdapter(Adapter[Deployment]):
    name = "maker"
    label = "Maker/Sky"
    bad_debt = "surplus"
    address_role = "Chainlog"
    events_table = "raw_maker_events"
    accrued_columns = accrual.ACCRUED_COLUMNS
    ddl = DDL
    presets: ClassVar[dict[str, Preset]] = {
        p.name: Preset(p.name, "maker", p.chain_id, p.address, p.from_block) for p in PRESETS.values()
    }
    option_names = ("urns",)
    #: `urns` is a file path or a list of urns, not a contract: discover checks it.
    text_options = ("urns",)
    account_columns = ("event", "ilk", "urn", "dst", "cdp_id")
    follow_columns = ("clip", "ilk")
    #: Governance sets an ilk's `mat` and `chop`; what it caps is the ilk's debt (`line`), not its collateral.
    collateral_cap = False
    #: chop is the Vow's penalty on the tab: the Clipper's falling price (and tip, chip) pays keepers.
    bonus_is_penalty = True
    events_view = "stg_maker_events"
    pools_view = "stg_maker_pools"
    liquidations_view = "stg_maker_liquidations"
    liquidation_calls_view = "stg_maker_liquidation_calls"
    parameter_changes_view = "stg_maker_parameter_changes"
    governance_events_view = "stg_maker_governance_events"
    settings = SETTINGS

    def discover(self, rpc: RpcClient, address: str, block: int, options: dict[str, str]) -> Deployment:
        return discover(rpc, address, block, options.get("urns"))

    def follow(self, deployment: Deployment, named: pl.DataFrame) -> Deployment:
        """Every Clipper a Bark named (`named`: clip, ilk), as well as the Dog's now: a clip governance replaced keeps
        selling the auctions it started (its takes, its running sales), which the Dog no longer points to."""
        have = {clip for clip, _ in deployment.clips}
        more = sorted({(c, i) for c, i in named.select("clip", "ilk").iter_rows() if c not in have})
        return replace(deployment, clips=(*deployment.clips, *more)) if more else deployment

    def log_query(self, deployment: Deployment) -> LogQuery:
        addresses = [deployment.vat, deployment.dog] + ([deployment.cdp_manager] if deployment.cdp_manager else [])
        addresses += [a for a in (deployment.spot, deployment.jug) if a not in addresses]
        addresses += sorted({clip for clip, _ in deployment.clips} - set(addresses))
        files = sorted(FILE_NOTE_TOPICS | DOG_FILE_TOPICS | CLIP_FILE_TOPICS)
        return LogQuery(addresses, [[NEW_CDP, *NOTE_TOPICS, BARK, *CLIP_EVENTS, *files]])

    def events_frame(self, deployment: Deployment, logs: list[dict[str, Any]]) -> pl.DataFrame:
        clips = dict(deployment.clips)
        decoded = (
            decode_log(
                log, deployment.vat, deployment.cdp_manager, deployment.dog, clips, deployment.spot, deployment.jug
            )
            for log in logs
        )
        return normalise.events_frame([e for e in decoded if e])

    def receipts_wanted(self, deployment: Deployment, events: pl.DataFrame) -> list[str]:
        wanted = events.filter(pl.col("event").is_in(["bark", "take"]))
        return wanted["tx_hash"].unique(maintain_order=True).to_list()

    def with_receipts(
        self, deployment: Deployment, events: pl.DataFrame, receipts: Mapping[str, dict[str, Any]]
    ) -> pl.DataFrame:
        """Each Bark's keeper, incentive, auction tab, starting price and lot: the Kick of the clip and auction it
        names, in its transaction; each Take's buyer as `keeper`: the transaction's sender (the Take event names none;
        Clipper.take takes the dai from its caller, which is the sender unless a keeper's contract made the call, whose
        operator the sender then is)."""
        found = {tx: kicks(receipt) for tx, receipt in receipts.items()}
        rows = []
        for tx, index, clip, auction in (
            events.filter(pl.col("event") == "bark").select("tx_hash", "log_index", "clip", "auction_id").iter_rows()
        ):
            kick = found.get(tx, {}).get((clip, auction)) if clip is not None and auction is not None else None
            if kick is not None:
                rows.append((tx, index, kick.keeper, kick.incentive_dai, kick.tab_dai, kick.top, kick.lot))
        for tx, index in events.filter(pl.col("event") == "take").select("tx_hash", "log_index").iter_rows():
            sender = receipts[tx].get("from") if tx in receipts else None
            if isinstance(sender, str):
                rows.append((tx, index, sender.lower(), None, None, None, None))
        if not rows:
            return events
        exact = events.schema["keeper_incentive_dai"]
        taken = {
            "keeper": pl.Utf8(),
            "keeper_incentive_dai": exact,
            "auction_tab_dai": exact,
            "auction_price": exact,
            "auction_lot": exact,
        }
        schema: dict[str, pl.DataType] = {
            "tx_hash": pl.Utf8(),
            "log_index": pl.Int32(),
            **{f"_{c}": t for c, t in taken.items()},
        }
        kicked = pl.DataFrame(rows, schema=schema, orient="row")
        joined = events.join(kicked, on=["tx_hash", "log_index"], how="left", maintain_order="left")
        return joined.with_columns(pl.coalesce(f"_{c}", c).alias(c) for c in taken).select(events.columns)

    def snapshot(
        self, rpc: RpcClient, deployment: Deployment, events: pl.DataFrame, chain_id: int, block: int, timestamp: int
    ) -> Snapshot:
        noted = events.filter(pl.col("event").is_in(URN_EVENTS))
        logged = {(r[0], r[1]) for r in noted.select("ilk", "urn").iter_rows()}
        logged |= {(r[0], r[1]) for r in noted.filter(pl.col("event") == "fork").select("ilk", "dst").iter_rows()}
        cdp_ids = [int(c) for c in events.filter(pl.col("event") == "NewCdp")["cdp_id"].to_list()]
        ilks = set(deployment.registry)
        ilks |= set(events.filter(pl.col("ilk").is_not_null())["ilk"].to_list())
        ilks |= {ilk for ilk, _ in deployment.listed if ilk is not None}
        urns, extra = discover_urns(rpc, deployment, sorted(logged), cdp_ids, sorted(ilks), block)
        system, states = read_ilks(rpc, deployment, sorted(ilks | set(extra)), block, timestamp)
        # An ilk the Vat never initialised (a mistyped listed one) has no rate and no urns.
        by_ilk = {i.ilk: i for i in states if i.rate}
        urns = [u for u in urns if u.ilk in by_ilk]
        dai_symbol = deployment.dai_symbol
        counts: dict[str, int] = {}
        for u in urns:
            counts[u.ilk] = counts.get(u.ilk, 0) + 1
        source = deployment.chainlog
        # The auctions of every clip the Dog names: the registry's (discover) and those of ilks found otherwise.
        clips = set(deployment.clips) | {(i.clip, i.ilk) for i in by_ilk.values() if i.clip != ZERO}
        names = {i.ilk: i.name for i in by_ilk.values()}
        running, issues = auctions.read_auctions(rpc, sorted(clips), names, block)
        units = {i.ilk: i.gem.vat_units for i in by_ilk.values()}
        positions, health = normalise.contract_frames(
            urns, by_ilk, system, deployment, dai_symbol, chain_id, block, timestamp
        )
        frames = {
            "raw_maker_ilks": normalise.ilks_frame(list(by_ilk.values()), system, counts, chain_id, source, block),
            "raw_maker_urns": normalise.urns_frame(urns, by_ilk, system, chain_id, source, block),
            auctions.AUCTIONS: auctions.auctions_frame(running, names, units, chain_id, source, block),
            "data_quality": data_quality_frame(
                [*issues, *normalise.oversized_issues(urns, by_ilk)], self.name, chain_id, source, block
            ),
            "positions": positions,
            "wallet_health": health,
            "markets": markets_frame(
                normalise.market_rows(list(by_ilk.values()), deployment.dai),
                self.name,
                chain_id,
                source,
                block,
                timestamp,
            ),
        }
        return Snapshot(frames, accounts=len(urns), accounts_with_debt=sum(1 for u in urns if u.art))

    def accrue(
        self, table: str, rows: pl.DataFrame, timestamp: int, related: Callable[[str], pl.DataFrame]
    ) -> list[dict[str, Any]]:
        return accrual.accrue(table, rows, timestamp, related)


ADAPTER = MakerAdapter()
