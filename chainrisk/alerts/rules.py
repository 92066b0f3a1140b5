"""Alert rules from the config (`[alerts]`, `[[alerts.rules]]`, `[watchlists]`) and their evaluation over scores.

```toml
[watchlists]
treasury = ["0xabc...", "0xdef..."]

[alerts]
webhooks = ["https://hooks.example.com/..."]   # each gets a JSON POST per event (Slack-compatible `text`)

[alerts.email]                                  # optional SMTP delivery, one message per run with its events
host = "smtp.example.com"
port = 587
sender = "chainrisk@example.com"
to = ["risk@example.com"]
username = "chainrisk"                          # optional
password_env = "CHAINRISK_SMTP_PASSWORD"        # the password is read from this variable, never from the file
starttls = true                                 # default true (false: plain, or ssl = true for SMTPS)

[[alerts.rules]]
name = "treasury health"
kind = "health_below"          # a wallet's weakest health factor over its markets
threshold = 1.2
watchlist = "treasury"         # or wallets = [...]; neither: every borrower
protocol = "aave-v3"           # optional filters (also `market`, the market id)

[[alerts.rules]]
name = "liquidatable collateral"
kind = "liquidatable_collateral_above"   # USD collateral of liquidatable wallets, per market
usd = 1_000_000
scope = "market"               # "market" (default: one alert per market) or "total" (all markets together)

[[alerts.rules]]
name = "bad debt"
kind = "bad_debt_above"        # USD debt not covered by collateral
usd = 1_000

[[alerts.rules]]
name = "lenders locked"
kind = "utilization_above"     # a pool's debt over its supply, percent: each Aave reserve, Morpho Blue market, Comet
percent = 95                   # base (mart_lending_pools)

[[alerts.rules]]
name = "caps nearly full"
kind = "cap_used_above"        # the share of a pool's cap used, percent: Aave's supply and borrow caps, a Comet
percent = 90                   # collateral's supplyCap, a Maker ilk's debt ceiling (line)
caps = ["supply", "debt"]      # optional: one of the two only (supply caps; borrow caps and debt ceilings)

[[alerts.rules]]
name = "large liquidations"
kind = "liquidation_above"     # each liquidation the run indexed whose debt repaid exceeds `usd` (mart_liquidations)
usd = 100_000

[[alerts.rules]]
name = "keeper opportunities"
kind = "keeper_gain_above"     # each account a keeper can liquidate now at a gain above `usd` (mart_liquidation_calls)
usd = 500

[[alerts.rules]]
name = "stalled auctions"
kind = "auction_stalled_above" # each Maker/Sky auction that needs a reset with more than `dai` left to raise
dai = 10_000                   # (stg_maker_auctions)

[[alerts.rules]]
name = "stale data"
kind = "stale_above"           # minutes the newest stored snapshot of a configured market lags the clock
minutes = 30

[[alerts.rules]]
name = "broken oracles"
kind = "data_quality"          # a problem an odd contract gave the latest snapshot (chainrisk.protocols.quality)
kinds = ["oracle_reverts", "oracle_zero", "stale_usd_price"]   # optional: every kind when left out

[[alerts.rules]]
name = "governance"
kind = "parameter_changed"     # each risk parameter a market's latest snapshot found changed (mart_parameter_changes)
parameters = ["ltv", "liquidation_threshold", "liquidation_factor"]   # optional: every change, listing and removal
```

A rule observes subjects (a wallet, a market, or "all markets") at the latest scored block; the delivery step
(chainrisk.alerts.deliver) turns changes of breach state into events.

`utilization_above` and `cap_used_above` watch each pool a market lends from or caps (mart_lending_pools, over every
adapter's pools view): near 100 % utilization a pool's lenders cannot withdraw, and at 100 % of a cap the protocol
refuses the next supply or borrow. A pool's subject is `protocol:market` where the market is the pool (a Morpho
market, a Comet's base, a Maker ilk), else `protocol:market:pool` (an Aave reserve, a Comet collateral: the asset);
a cap's subject ends in ` supply cap` or ` debt cap`.

`keeper_gain_above` watches what liquidators watch: each account whose call to send now (mart_liquidation_calls'
`best_for_account`, going through) gains the keeper more than `usd` (at the latest snapshot's prices, before gas and
slippage: the collateral received less the debt paid where the keeper pays, Aave and Morpho Blue; the reward the
protocol pays otherwise, a Maker bark's tip and chip, Liquity's gas compensation); it recovers once the gain falls
under it, and when the account is no longer liquidatable (liquidated, or healthy again). Its subject is
`protocol:market:wallet`.

`auction_stalled_above` watches Maker/Sky's auctions (stg_maker_auctions): a running auction past its clip's `tail`,
or priced under its `cusp` of its start, takes no bid until a keeper resets it (`redo`), and while it waits its
collateral is not sold and its tab not raised (Black Thursday's lesson: auctions nobody bids on leave the system
short). Each running auction is a subject (`maker:ilk:clip:auction id`), breached while it needs a reset with more
than `dai` left to raise, recovered once it is reset, bought or ended.

`stale_above` watches the monitor itself: each configured market's age is the clock (the run's) less the chain time of
its newest stored snapshot (`sync_state.snapshot_timestamp`), so it grows while the market's RPC is down or refuses
it, while its node serves an old head, or while its adapter fails, and a market never indexed breaches at once. It is
evaluated on every run, one whose every market failed included: the runs that lose their data are the ones that must
say so. `data_quality` sends one alert per problem a market's latest snapshot met (an oracle that reverts leaves the
positions whose health needs its price unliquidatable on the chain too), and its recovery once a snapshot no longer
meets it.

`liquidation_above` reports events: each account liquidated in a transaction that the run's snapshot of its indexed
contract reached (blocks after the contract's previous snapshot, up to this one) and whose debt repaid exceeds `usd`
(summed over the transaction's liquidation rows: a Comet absorb's debt and collateral rows are one liquidation), once;
it never recovers. A contract's first snapshot sends none: the history a first index reads is not news. Its subject is
`protocol:market:wallet:tx_hash`.

`parameter_changed` reports events too: each governed setting an indexed contract's latest snapshot read with a value
its snapshot before did not (mart_parameter_changes: an Aave reserve's or e-mode category's, a Comet collateral's or
configuration's, a Maker ilk's, a Morpho market's fee), with its old and new value and where it happened (the block
and transaction of the log saying so where the protocol logs one, else the two snapshots around it), and each item
listed or gone since that snapshot; once, never recovering. With `parameters` only changes of those settings (by their
raw column's name, as the mart gives them) are sent. Its subject is `protocol:market:item:parameter@block`
(`listed`/`gone` in place of the parameter).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb

from chainrisk.errors import UserError
from chainrisk.protocols.adapter import adapters
from chainrisk.protocols.quality import KINDS as QUALITY_KINDS
from chainrisk.store.views import query_sql
from chainrisk.units import setting_text

RULE_KINDS = (
    "health_below",
    "liquidatable_collateral_above",
    "bad_debt_above",
    "utilization_above",
    "cap_used_above",
    "stale_above",
    "data_quality",
    "liquidation_above",
    "keeper_gain_above",
    "auction_stalled_above",
    "parameter_changed",
)
#: Rules that report events rather than a state: each subject is sent once, when first seen, and never recovers.
EVENT_KINDS = ("liquidation_above", "parameter_changed")
#: Rules that may take `scope = "total"`: a USD measure of each market that adds up over markets (the others watch
#: wallets, accounts, pools or events, or measure what does not add up).
SUMMED_KINDS = ("liquidatable_collateral_above", "bad_debt_above")
RULE_KEYS = {
    *("name", "kind", "threshold", "usd", "percent", "minutes", "dai", "kinds", "caps", "parameters"),
    *("watchlist", "wallets", "protocol", "market", "scope"),
}
#: The key holding each kind's limit (data_quality has none: a problem is there or not).
LIMIT_KEYS = {
    "health_below": "threshold",
    "utilization_above": "percent",
    "cap_used_above": "percent",
    "stale_above": "minutes",
    "auction_stalled_above": "dai",
    "data_quality": None,
    "parameter_changed": None,
}
#: The caps a cap_used_above rule may watch, by the word its `caps` uses: the column of mart_lending_pools.
CAPS = {"supply": "supply_cap_used_pct", "debt": "debt_cap_used_pct"}
EMAIL_KEYS = {"host", "port", "sender", "to", "username", "password_env", "starttls", "ssl"}


@dataclass(frozen=True)
class Rule:
    name: str  #: unique name, part of every message and of the dedup key
    kind: str  #: one of RULE_KINDS
    #: health factor (health_below), percent (utilization_above, cap_used_above), minutes (stale_above), dai
    #: (auction_stalled_above) or USD (0 for data_quality)
    threshold: float
    wallets: tuple[str, ...] = ()  #: lowercase addresses; empty = every borrower
    protocol: str | None = None  #: only this protocol's markets
    market: str | None = None  #: only this market id (stale_above: the indexed contract, as the config gives it)
    scope: str = "market"  #: market rules: one subject per market, or "total"
    #: data_quality: the problems watched (chainrisk.protocols.quality.KINDS; empty: every kind)
    problems: tuple[str, ...] = ()
    #: cap_used_above: the caps watched (keys of CAPS; empty: both)
    caps: tuple[str, ...] = ()
    #: parameter_changed: the settings watched (raw column names; empty: every change, listing and removal)
    parameters: tuple[str, ...] = ()


@dataclass(frozen=True)
class EmailChannel:
    host: str
    port: int
    sender: str
    to: tuple[str, ...]
    username: str | None
    password_env: str | None
    starttls: bool
    ssl: bool


@dataclass(frozen=True)
class AlertConfig:
    rules: tuple[Rule, ...]
    webhooks: tuple[str, ...]
    email: EmailChannel | None


@dataclass(frozen=True)
class WatchedMarket:
    """A configured market, as `stale_above` watches it."""

    name: str  #: the config's name for it (the alert's subject)
    protocol: str  #: adapter name
    address: str  #: the indexed contract, lowercase hex (sync_state.market)
    chain_id: int | None  #: its chain, when the config names it (else the default RPC's, whichever that serves)


@dataclass(frozen=True)
class Observation:
    rule: Rule
    subject: str  #: wallet address, "protocol:market" or "all markets"
    breached: bool
    value: float | None  #: the measured health factor or USD (None: the subject has nothing to measure now)
    chain_id: int | None
    block_number: int | None
    where: str  #: context for messages (the market of the weakest health factor, ...)


def _address(value: Any, where: str) -> str:
    text = str(value).lower()
    if len(text) != 42 or not text.startswith("0x") or any(c not in "0123456789abcdef" for c in text[2:]):
        raise UserError(f"{where}: {value!r} is not a 0x-prefixed 20-byte address")
    return text


def _number(value: Any, where: str) -> float:
    # `not 0 <= value < inf` refuses nan and inf too (TOML has both): a rule compared against nan never fires.
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < float("inf"):
        raise UserError(f"{where} must be a finite non-negative number, not {value!r}")
    return float(value)


def parse_watchlists(raw: Any, where: str) -> dict[str, tuple[str, ...]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise UserError(f"{where}: [watchlists] must map names to lists of addresses")
    lists: dict[str, tuple[str, ...]] = {}
    for name, addresses in raw.items():
        if not isinstance(addresses, list) or not addresses:
            raise UserError(f"{where}: watchlist {name!r} must be a non-empty list of addresses")
        lists[name] = tuple(_address(a, f"{where}: watchlist {name!r}") for a in addresses)
    return lists


def _rule(entry: Any, where: str, watchlists: dict[str, tuple[str, ...]]) -> Rule:
    if not isinstance(entry, dict):
        raise UserError(f"{where}: each [[alerts.rules]] must be a table")
    unknown = sorted(set(entry) - RULE_KEYS)
    if unknown:
        raise UserError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(RULE_KEYS))})")
    kind = entry.get("kind")
    if kind not in RULE_KINDS:
        raise UserError(f"{where}: kind must be one of {', '.join(RULE_KINDS)}, not {kind!r}")
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        raise UserError(f"{where}: give the rule a name")
    limit_key = LIMIT_KEYS.get(kind, "usd")
    if limit_key is not None and limit_key not in entry:
        raise UserError(f"{where}: {kind} needs `{limit_key}`")
    problems: tuple[str, ...] = ()
    if "kinds" in entry:
        problems = _problems(entry["kinds"], kind, where)
    caps = _caps(entry["caps"], kind, where) if "caps" in entry else ()
    parameters = _parameters(entry["parameters"], kind, where) if "parameters" in entry else ()
    wallets: tuple[str, ...] = ()
    if kind == "health_below":
        if "watchlist" in entry and "wallets" in entry:
            raise UserError(f"{where}: give `watchlist` or `wallets`, not both")
        if "watchlist" in entry:
            if entry["watchlist"] not in watchlists:
                known = ", ".join(sorted(watchlists)) or "none defined"
                raise UserError(f"{where}: unknown watchlist {entry['watchlist']!r} (known: {known})")
            wallets = watchlists[entry["watchlist"]]
        elif "wallets" in entry:
            if not isinstance(entry["wallets"], list) or not entry["wallets"]:
                raise UserError(f"{where}: wallets must be a non-empty list of addresses")
            wallets = tuple(_address(a, f"{where}: wallets") for a in entry["wallets"])
    elif "watchlist" in entry or "wallets" in entry:
        raise UserError(f"{where}: {kind} watches markets; wallets apply to health_below")
    scope = entry.get("scope", "market")
    if scope not in ("market", "total") or (scope == "total" and kind not in SUMMED_KINDS):
        raise UserError(f"{where}: scope must be 'market' or 'total' (rules that sum USD over markets only)")
    return Rule(
        name=name.strip(),
        kind=kind,
        threshold=0.0 if limit_key is None else _number(entry[limit_key], f"{where}: {limit_key}"),
        wallets=wallets,
        protocol=str(entry["protocol"]) if "protocol" in entry else None,
        market=str(entry["market"]).lower() if "market" in entry else None,
        scope=scope,
        problems=problems,
        caps=caps,
        parameters=parameters,
    )


def _known_names(raw: Any, where: str, key: str, known: Collection[str], what: tuple[str, str]) -> tuple[str, ...]:
    """A rule's `key`: a non-empty list of names among `known`, sorted; `what` words one and several of them."""
    one, several = what
    if not isinstance(raw, list) or not raw or not all(isinstance(name, str) for name in raw):
        raise UserError(f"{where}: {key} must be a non-empty list of {several} ({', '.join(known)})")
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise UserError(f"{where}: unknown {one} {unknown[0]!r} (known: {', '.join(known)})")
    return tuple(sorted(set(raw)))


def _problems(raw: Any, kind: str, where: str) -> tuple[str, ...]:
    """A data_quality rule's `kinds`: a non-empty list of known problem kinds."""
    if kind != "data_quality":
        raise UserError(f"{where}: `kinds` applies to data_quality rules only")
    return _known_names(raw, where, "kinds", QUALITY_KINDS, ("problem kind", "problem kinds"))


def _caps(raw: Any, kind: str, where: str) -> tuple[str, ...]:
    """A cap_used_above rule's `caps`: a non-empty list of keys of CAPS."""
    if kind != "cap_used_above":
        raise UserError(f"{where}: `caps` applies to cap_used_above rules only")
    if not isinstance(raw, list) or not raw or not all(isinstance(c, str) and c in CAPS for c in raw):
        raise UserError(f"{where}: caps must be a non-empty list of {' and '.join(repr(c) for c in CAPS)}")
    return tuple(c for c in CAPS if c in raw)


def _parameters(raw: Any, kind: str, where: str) -> tuple[str, ...]:
    """A parameter_changed rule's `parameters`: a non-empty list of settings some adapter governs."""
    if kind != "parameter_changed":
        raise UserError(f"{where}: `parameters` applies to parameter_changed rules only")
    known = sorted({s.column for a in adapters().values() for table in a.settings for s in table.settings})
    return _known_names(raw, where, "parameters", known, ("parameter", "setting names"))


def _email(raw: Any, where: str) -> EmailChannel:
    if not isinstance(raw, dict):
        raise UserError(f"{where}: [alerts.email] must be a table")
    if "password" in raw:
        raise UserError(f"{where}: keep the SMTP password out of the file; name its variable with password_env")
    unknown = sorted(set(raw) - EMAIL_KEYS)
    if unknown:
        raise UserError(f"{where}: unknown key {unknown[0]!r} in [alerts.email]")
    for key in ("host", "sender", "to"):
        if key not in raw:
            raise UserError(f"{where}: [alerts.email] needs `{key}`")
    to = raw["to"] if isinstance(raw["to"], list) else [raw["to"]]
    if not to or not all(isinstance(t, str) and "@" in t for t in to):
        raise UserError(f"{where}: [alerts.email] to must be e-mail addresses")
    port = raw.get("port", 587)
    if not isinstance(port, int) or not 0 < port < 65536:
        raise UserError(f"{where}: [alerts.email] port must be a TCP port, not {port!r}")
    return EmailChannel(
        host=str(raw["host"]),
        port=port,
        sender=str(raw["sender"]),
        to=tuple(to),
        username=str(raw["username"]) if "username" in raw else None,
        password_env=str(raw["password_env"]) if "password_env" in raw else None,
        starttls=bool(raw.get("starttls", not raw.get("ssl", False))),
        ssl=bool(raw.get("ssl", False)),
    )


def parse_alerts(raw: Any, watchlists: dict[str, tuple[str, ...]], where: str) -> AlertConfig | None:
    """The `[alerts]` table, checked; None when the config has none."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise UserError(f"{where}: [alerts] must be a table")
    unknown = sorted(set(raw) - {"rules", "webhooks", "email"})
    if unknown:
        raise UserError(f"{where}: unknown key {unknown[0]!r} in [alerts] (known: email, rules, webhooks)")
    entries = raw.get("rules", [])
    if not isinstance(entries, list) or not entries:
        raise UserError(f"{where}: [alerts] needs at least one [[alerts.rules]]")
    rules = tuple(_rule(e, f"{where} [[alerts.rules]] #{i + 1}", watchlists) for i, e in enumerate(entries))
    names = [r.name for r in rules]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise UserError(f"{where}: two alert rules are named {duplicate!r}; names must be unique")
    webhooks = raw.get("webhooks", [])
    if isinstance(webhooks, str):
        webhooks = [webhooks]
    if not isinstance(webhooks, list) or not all(
        isinstance(u, str) and u.startswith(("http://", "https://")) for u in webhooks
    ):
        raise UserError(f"{where}: webhooks must be http(s) URLs")
    email = _email(raw["email"], where) if "email" in raw else None
    if not webhooks and email is None:
        raise UserError(f"{where}: [alerts] has rules but nowhere to send them: add webhooks or [alerts.email]")
    return AlertConfig(rules=rules, webhooks=tuple(webhooks), email=email)


#: Latest scored rows of every market (scored_markets names each market's latest block).
#: A rule's optional protocol and market filters, on a query's `protocol` and `market` columns (params: _filters).
_FILTERED = "(?::VARCHAR IS NULL OR protocol = ?) AND (?::VARCHAR IS NULL OR market = ?)"
_LATEST = f"""
SELECT protocol, chain_id, market, w.wallet, block_number, w.health_factor, w.collateral_usd,
       w.liquidatable, w.bad_debt_usd
FROM wallet_risk w JOIN scored_markets s USING (protocol, chain_id, market, block_number)
WHERE {_FILTERED}
"""


def _filters(rule: Rule) -> list[Any]:
    """The parameters of _FILTERED for `rule`."""
    return [rule.protocol, rule.protocol, rule.market, rule.market]


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    return con.execute(sql, params).fetchall()


def evaluate(
    con: duckdb.DuckDBPyConnection, rule: Rule, markets: Sequence[WatchedMarket] = (), now: datetime | None = None
) -> list[Observation]:
    """Every subject the rule watches, breached or not, at the latest scored blocks (`stale_above`: each of
    `markets` at the time `now`, default the clock)."""
    if rule.kind == "stale_above":
        return _stale(con, rule, markets, now or datetime.now(UTC))
    if rule.kind == "data_quality":
        return _data_quality(con, rule)
    if rule.kind in ("utilization_above", "cap_used_above"):
        return _pools(con, rule)
    if rule.kind == "liquidation_above":
        return _liquidations(con, rule)
    if rule.kind == "keeper_gain_above":
        return _keeper_gains(con, rule)
    if rule.kind == "auction_stalled_above":
        return _stalled_auctions(con, rule)
    if rule.kind == "parameter_changed":
        return _parameter_changes(con, rule)
    filters = _filters(rule)
    if rule.kind == "health_below":
        sql = f"""
            WITH latest AS ({_LATEST}) SELECT wallet, arg_min(protocol || ' market ' || market, health_factor),
                   min(health_factor), any_value(chain_id), max(block_number)
            FROM latest WHERE health_factor IS NOT NULL GROUP BY wallet
        """
        found = {
            row[0]: Observation(rule, row[0], row[2] < rule.threshold, row[2], row[3], row[4], row[1])
            for row in _rows(con, sql, filters)
            if not rule.wallets or row[0] in rule.wallets
        }
        # Watched wallets without debt now are healthy: a breach they had recovers.
        for wallet in rule.wallets:
            found.setdefault(wallet, Observation(rule, wallet, False, None, None, None, "no debt"))
        return sorted(found.values(), key=lambda o: o.subject)
    measure = "sum(collateral_usd) FILTER (WHERE liquidatable)" if rule.kind.startswith("liquidatable") else None
    measure = measure or "sum(bad_debt_usd)"
    group = "protocol || ':' || market" if rule.scope == "market" else "'all markets'"
    sql = f"""
        WITH latest AS ({_LATEST}) SELECT {group} AS subject, coalesce({measure}, 0), any_value(chain_id),
               max(block_number), count(DISTINCT market)
        FROM latest GROUP BY subject ORDER BY subject
    """
    return [
        Observation(rule, row[0], row[1] > rule.threshold, row[1], row[2], row[3], f"{row[4]} market(s)")
        for row in _rows(con, sql, filters)
    ]


def _stale(
    con: duckdb.DuckDBPyConnection, rule: Rule, markets: Sequence[WatchedMarket], now: datetime
) -> list[Observation]:
    """Per configured market: minutes from its newest stored snapshot's chain time to `now`; a market never indexed
    (no snapshot stored) breaches with no value. A market whose config names no chain takes its newest snapshot on a
    chain no other entry of the same contract names (the same address may be deployed on several chains)."""
    rows = con.execute(
        "SELECT protocol, chain_id, market, snapshot_block, snapshot_timestamp FROM sync_state "
        "WHERE snapshot_timestamp IS NOT NULL"
    ).fetchall()
    named = {(m.protocol, m.address, m.chain_id) for m in markets if m.chain_id is not None}
    found = []
    for market in markets:
        if rule.protocol not in (None, market.protocol) or rule.market not in (None, market.address):
            continue
        snapshots = [
            r
            for r in rows
            if (r[0], r[2]) == (market.protocol, market.address)
            and (r[1] == market.chain_id if market.chain_id is not None else (r[0], r[2], r[1]) not in named)
        ]
        if not snapshots:
            where = "never indexed: no snapshot of it is stored"
            found.append(Observation(rule, market.name, True, None, market.chain_id, None, where))
            continue
        _, chain_id, _, block, timestamp = max(snapshots, key=lambda r: (int(r[4]), int(r[3])))
        # A chain's clock may run a little ahead of this machine's: that is no age.
        minutes = round(max(0.0, now.timestamp() - int(timestamp)) / 60, 1)
        when = datetime.fromtimestamp(int(timestamp), UTC).strftime("%Y-%m-%d %H:%M UTC")
        breached = minutes > rule.threshold
        found.append(Observation(rule, market.name, breached, minutes, int(chain_id), int(block), f"snapshot {when}"))
    return sorted(found, key=lambda o: o.subject)


def _data_quality(con: duckdb.DuckDBPyConnection, rule: Rule) -> list[Observation]:
    """One breached subject per problem each market's latest snapshot stored (`data_quality`, kept for the latest
    snapshot only); a problem the next snapshot no longer meets is not observed, so delivery sends its recovery."""
    sql = f"""
        SELECT protocol, chain_id, market, subject, kind, detail, unknown, block_number FROM data_quality
        WHERE {_FILTERED} AND (len(?::VARCHAR[]) = 0 OR list_contains(?::VARCHAR[], kind))
        ORDER BY protocol, chain_id, market, kind, subject
    """
    rows = _rows(con, sql, [*_filters(rule), list(rule.problems), list(rule.problems)])
    found = []
    for protocol, chain_id, market, subject, kind, detail, unknown, block in rows:
        where = f"{detail}; unknown: {unknown}" if unknown else detail
        observed = f"{protocol}:{market} {kind} {subject}"
        found.append(Observation(rule, observed, True, None, int(chain_id), int(block), where))
    return found


def _pools(con: duckdb.DuckDBPyConnection, rule: Rule) -> list[Observation]:
    """Per pool of mart_lending_pools (its SQL inlined, so it runs whether or not the views are installed): its
    utilization (utilization_above), or the share used of each cap it has (cap_used_above); a pool without the
    figure is not watched."""
    # Each figure watched, by what its subject's name ends with: a pool's utilization, or each of its caps.
    watched = {"": "utilization_pct"}
    if rule.kind == "cap_used_above":
        watched = {f" {cap} cap": CAPS[cap] for cap in rule.caps or CAPS}
    sql = f"""
        SELECT protocol, chain_id, market, pool, block_number, symbol, pool_kind, market_label,
               {", ".join(watched.values())}
        FROM ({query_sql("mart_lending_pools")}) WHERE {_FILTERED}
        ORDER BY protocol, chain_id, market, pool
    """
    found = []
    for protocol, chain, market, pool, block, symbol, pool_kind, label, *figures in _rows(con, sql, _filters(rule)):
        subject = f"{protocol}:{market}" if pool == market else f"{protocol}:{market}:{pool}"
        where = (label or market) if pool == market else f"{symbol or pool} {pool_kind} of {label or market}"
        for ending, used in zip(watched, figures, strict=True):
            if used is not None:
                found.append(
                    Observation(rule, subject + ending, used > rule.threshold, used, int(chain), int(block), where)
                )
    return found


def _keeper_gains(con: duckdb.DuckDBPyConnection, rule: Rule) -> list[Observation]:
    """Each account with a call to send now that goes through and whose keeper repays for the collateral
    (mart_liquidation_calls, its SQL inlined), breached when its gain exceeds the rule's USD."""
    sql = f"""
        SELECT protocol, chain_id, market, wallet, market_label, keeper_gain_usd, block_number, call, debt_symbol,
               debt_repaid_usd, collateral_symbol
        FROM ({query_sql("mart_liquidation_calls")})
        WHERE {_FILTERED} AND best_for_account AND goes_through AND keeper_pays AND keeper_gain_usd IS NOT NULL
        ORDER BY protocol, market, wallet
    """
    found = []
    for protocol, chain, market, wallet, label, gain, block, call, debt, repaid, seized in _rows(
        con, sql, _filters(rule)
    ):
        where = f"{label or market}: {call} on {wallet} repays ${repaid:,.0f} of {debt} for {seized}"
        found.append(
            Observation(rule, f"{protocol}:{market}:{wallet}", gain > rule.threshold, gain, int(chain), block, where)
        )
    return found


def _stalled_auctions(con: duckdb.DuckDBPyConnection, rule: Rule) -> list[Observation]:
    """Each running Maker auction (stg_maker_auctions, its SQL inlined), breached while it needs a reset with more than
    the rule's dai left to raise."""
    sql = f"""
        SELECT protocol, chain_id, market, clip, auction_id, wallet, status, tab_left_dai::DOUBLE / 1e18,
               lot_left_tokens, collateral_symbol, age_s, snapshot_block
        FROM ({query_sql("stg_maker_auctions")})
        WHERE {_FILTERED} AND status IN ('running', 'needs redo')
        ORDER BY market, clip, auction_id
    """
    found = []
    rows = _rows(con, sql, _filters(rule))
    for protocol, chain, market, clip, auction, urn, status, tab, lot, symbol, age, block in rows:
        hours = f", {age / 3600:.1f} h since its start" if age is not None else ""
        where = f"{market}: auction {auction} of {urn}, {status}, {lot:,.4f} {symbol or 'gem'} left to sell{hours}"
        breached = status == "needs redo" and tab > rule.threshold
        found.append(
            Observation(rule, f"{protocol}:{market}:{clip}:{auction}", breached, tab, int(chain), block, where)
        )
    return found


def _liquidations(con: duckdb.DuckDBPyConnection, rule: Rule) -> list[Observation]:
    """Each account liquidated in a transaction between its indexed contract's previous snapshot and its latest
    (mart_liquidations, its SQL inlined) whose debt repaid exceeds the rule's USD; none for a contract with one
    snapshot. Only the breaches are observed: an event is not a state that recovers."""
    sql = f"""
        WITH ranked AS (
            SELECT protocol, chain_id, source, block_number,
                   row_number() OVER (PARTITION BY protocol, chain_id, source ORDER BY block_number DESC) AS k
            FROM snapshot_blocks
        ),
        windows AS (
            SELECT protocol, chain_id, source, max(block_number) FILTER (WHERE k = 1) AS latest,
                   max(block_number) FILTER (WHERE k = 2) AS previous
            FROM ranked GROUP BY protocol, chain_id, source
        )
        SELECT l.protocol, l.chain_id, l.market, l.wallet, l.tx_hash, any_value(l.market_label),
               sum(l.debt_repaid_usd), sum(l.collateral_seized_usd), max(l.block_number),
               string_agg(DISTINCT l.debt_symbol, '/'), string_agg(DISTINCT l.collateral_symbol, '/')
        FROM (SELECT * FROM ({query_sql("mart_liquidations")}) WHERE {_FILTERED}) AS l
        JOIN windows AS w ON w.protocol = l.protocol AND w.chain_id = l.chain_id AND w.source = l.source
        WHERE l.block_number > w.previous AND l.block_number <= w.latest
        GROUP BY l.protocol, l.chain_id, l.market, l.wallet, l.tx_hash
        HAVING sum(l.debt_repaid_usd) > ?
        ORDER BY max(l.block_number), l.protocol, l.market, l.wallet
    """
    found = []
    rows = _rows(con, sql, [*_filters(rule), rule.threshold])
    for protocol, chain, market, wallet, tx, label, debt, seized, block, debt_symbol, seized_symbol in rows:
        taken = f", ${seized:,.0f} of {seized_symbol} seized" if seized is not None else ""
        where = f"{label or market}: {wallet} liquidated, {debt_symbol} debt repaid{taken}, tx {tx}"
        found.append(Observation(rule, f"{protocol}:{market}:{wallet}:{tx}", True, debt, int(chain), int(block), where))
    return found


def _parameter_changes(con: duckdb.DuckDBPyConnection, rule: Rule) -> list[Observation]:
    """Each change (or listing, or removal) an indexed contract's latest snapshot found since its snapshot before
    (mart_parameter_changes, its SQL inlined); none for a contract with one snapshot. Only breaches are observed: an
    event is not a state that recovers."""
    sql = f"""
        WITH latest AS (
            SELECT protocol, chain_id, source, max(block_number) AS block_number FROM snapshot_blocks
            GROUP BY protocol, chain_id, source
        )
        SELECT c.protocol, c.chain_id, c.market, c.market_label, c.change, c.item_kind, c.item, c.symbol, c.parameter,
               c.unit, c.old_value, c.new_value, c.old_amount, c.new_amount, c.changed_after_block,
               c.changed_by_block, c.changed_at_block, c.changed_in_tx
        FROM (SELECT * FROM ({query_sql("mart_parameter_changes")}) WHERE {_FILTERED}) AS c
        JOIN latest AS l
            ON l.protocol = c.protocol AND l.chain_id = c.chain_id AND l.source = c.source
            AND l.block_number = c.changed_by_block
        WHERE c.changed_after_block IS NOT NULL AND (len(?::VARCHAR[]) = 0 OR list_contains(?, c.parameter))
        ORDER BY c.protocol, c.chain_id, c.market, c.item_kind, c.item, c.change, c.parameter
    """
    found = []
    watched = list(rule.parameters)
    for row in _rows(con, sql, [*_filters(rule), watched, watched]):
        protocol, chain, market, label, change, kind, item, symbol, parameter = row[:9]
        unit, old, new, old_amount, new_amount, after, by, at, tx = row[9:]
        what = f"{label or market}: {kind} {symbol or item}"
        if change == "changed":
            moved = f"{parameter} {setting_text(old_amount, unit, old)} -> {setting_text(new_amount, unit, new)}"
        else:
            moved = f"{change} ({item})"
        # Where the chain logs the change itself, its block and transaction; else the two snapshots around it.
        when = f"at block {at} (tx {tx})" if at is not None else f"between blocks {after} and {by}"
        where = f"{what} {moved}, {when}"
        subject = f"{protocol}:{market}:{item}:{parameter if change == 'changed' else change}@{by}"
        found.append(Observation(rule, subject, True, new_amount, int(chain), int(by), where))
    return found
