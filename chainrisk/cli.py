"""The `chainrisk` command line: parses arguments and turns user errors into one line and a non-zero exit."""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn

from chainrisk.errors import RedactingFilter, UserError, first_line, one_line

#: Bytes 8..11 of every DuckDB database file (after the header checksum).
DUCKDB_MAGIC = b"DUCK"

#: Operating-system failures a user fixes outside chainrisk (disk, permissions), each with the fix.
OS_FIXES: dict[int, str] = {
    errno.ENOSPC: "the disk is full: free space (or move the database) and run again",
    errno.EDQUOT: "the disk quota is used up: free space and run again",
    errno.EFBIG: "a file outgrew the size limit (ulimit -f): raise the limit or free space and run again",
    errno.EROFS: "the file system is read-only: give --db (or --out) a writable place",
    errno.EACCES: "make the folder writable for this user, or choose another path",
    errno.EPERM: "make the folder writable for this user, or choose another path",
    errno.EIO: "the disk reported an I/O error: check it, then run again",
}


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument as one UserError line instead of usage text and SystemExit."""

    def error(self, message: str) -> NoReturn:
        raise UserError(f"{message}; see `{self.prog} --help`")


def _int_at_least(minimum: int, what: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number; give {what}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is below {minimum}; give {what}")
        return value

    return parse


def _int_between(minimum: int, maximum: int, what: str) -> Callable[[str], int]:
    at_least = _int_at_least(minimum, what)

    def parse(text: str) -> int:
        value = at_least(text)
        if value > maximum:
            raise argparse.ArgumentTypeError(f"{value} is above {maximum:,}; give {what}")
        return value

    return parse


def _float_between(low: float, high: float, what: str) -> Callable[[str], float]:
    """A finite number in (low, high]: nan and inf are refused where a model would take them (an optimisation's
    target, a PD ceiling, a query's timeout) and answer nonsense or overflow."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number; give {what}") from None
        if not low < value <= high:  # nan compares false everywhere
            raise argparse.ArgumentTypeError(f"{text} is out of range; give {what}")
        return value

    return parse


BLOCK = _int_at_least(0, "a block number (0 or more)")
HEALTH_FACTOR = _float_between(0, 100, "a health factor above 0, at most 100")
COUNT = _int_at_least(0, "a count of 0 or more")
POSITIVE = _int_at_least(1, "a number of 1 or more")
AGGREGATE_HELP = (
    "pack up to N plain eth_calls of one block into one eth_call, for providers that bill by the call (default: the "
    "config's aggregate_calls, else 100; 0: off)"
)


def _check_db(db: Path, *, create: bool) -> Path:
    """Refuses a --db that cannot be a chainrisk database before anything (lock file, folder) is created.
    `create`: a missing file is fine when its folder exists (index and run create it)."""
    if db.is_dir():
        raise UserError(f"--db {db} is a folder; give a database file, such as {db / 'chainrisk.duckdb'}")
    if db.is_file() and db.stat().st_size > 0:  # an empty file (a run killed as it created it) is initialised
        with db.open("rb") as handle:
            header = handle.read(12)
        if header[8:12] != DUCKDB_MAGIC:
            raise UserError(f"{db} is not a DuckDB database; give --db a chainrisk database (or a new file to create)")
        return db
    if not create:
        raise UserError(f"no database at {db}; run `chainrisk index` or `chainrisk run` first, or fix --db")
    if not db.parent.is_dir():
        raise UserError(f"folder {db.parent} does not exist; create it, or give --db a file in an existing folder")
    return db


def _store_parts(db: Path) -> tuple[list[Path], list[Path]]:
    """The files and folders a chainrisk database is made of (resolved): the file, its WAL and writers' lock, the
    published snapshots readers open (with the cold history, kept only there) and the score book."""
    from chainrisk.jobs.lock import lock_path
    from chainrisk.jobs.score import book_dir
    from chainrisk.store.db import wal_path
    from chainrisk.store.published import published_dir

    base = db.resolve()
    return [base, wal_path(base), lock_path(base)], [published_dir(base), book_dir(base)]


def _refuse_writing_over_store(path: str | Path, db: Path, option: str, *, folder: bool = False) -> None:
    """One line, before anything is written, where an output path would overwrite the database's own files: a file
    (`--out`) that is one of them or lies in its published or score-book folder, or a folder (`--to`, rebuilt with
    --overwrite) that is one of those or holds the database. Before, `sql --out` replaced the database with a CSV and
    `export --overwrite` deleted it."""
    target = Path(path).resolve()
    files, folders = _store_parts(db)
    hit = next((f for f in folders if target == f or f in target.parents), None)
    if hit is None and not folder:
        hit = next((f for f in files if target == f), None)
    if hit is None and folder:
        hit = next((f for f in files if target in f.parents), None)
    if hit is not None:
        if folder and target in hit.parents:
            what = f"holds the database {db}"
        elif hit == files[0]:
            what = "is the database itself"
        else:
            what = f"is part of the database {db} (its {hit.name})"
        raise UserError(f"{option} {path} {what}; write to a {'folder' if folder else 'file'} of its own")
    if not folder and target.is_dir():
        raise UserError(f"{option} {path} is a folder; give a file name, such as {Path(path) / 'out.csv'}")


def _devnet_up(args: argparse.Namespace) -> None:
    from chainrisk.devnet.build import DevnetOptions, build_devnet
    from chainrisk.devnet.extras import ALL_PROTOCOLS, check_protocols
    from chainrisk.devnet.manifest import manifest_path, read_manifest
    from chainrisk.devnet.node import stop_process
    from chainrisk.devnet.prices import parse_start

    names = tuple(p.strip() for p in args.protocols.split(",") if p.strip()) if args.protocols else ALL_PROTOCOLS
    protocols = check_protocols(names)  # before a running devnet is stopped
    folder = Path(args.state_dir) if args.state_dir else None
    path = manifest_path(folder)
    if path.is_file():
        previous = read_manifest(path)
        if _pid_alive(int(previous["pid"])):
            if not args.replace:
                raise UserError(
                    f"a devnet is already running on port {previous['port']}; "
                    "stop it with `chainrisk devnet down` or pass --replace"
                )
            stop_process(int(previous["pid"]))
    options = DevnetOptions(
        wallets=args.wallets,
        days=args.days,
        seed=args.seed,
        port=args.port,
        start=parse_start(args.start),
        step_hours=args.step_hours,
        protocols=protocols,
    )
    print(
        f"building devnet: {options.wallets} wallets, {options.days:g} days of prices from {args.start}, "
        f"seed {options.seed}, port {options.port}; {', '.join(options.protocols)} ...",
        flush=True,
    )
    manifest = build_devnet(options, folder)
    history = manifest["history"]
    print(
        f"devnet up at {manifest['rpc_url']} (chain {manifest['chain_id']}, head block {manifest['head_block']}); "
        f"Aave PoolAddressesProvider {manifest['aave_v3']['pool_addresses_provider']}, "
        f"Morpho {manifest['morpho_blue']['morpho']}; {history['aave_liquidations']} Aave and "
        f"{history['morpho_liquidations']} Morpho liquidations; manifest {manifest_path(folder)}; "
        "`chainrisk devnet status` lists every protocol"
    )


def _devnet_compile(args: argparse.Namespace) -> None:
    from chainrisk.devnet.extras import ALL_PROTOCOLS, check_protocols, compile_devnet

    names = tuple(p.strip() for p in args.protocols.split(",") if p.strip()) if args.protocols else ALL_PROTOCOLS
    protocols = check_protocols(names)
    seconds = compile_devnet(protocols)
    print(f"devnet contracts compiled (or read from the cache) in {seconds:.1f} s: {', '.join(protocols)}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _devnet_down(args: argparse.Namespace) -> None:
    from chainrisk.devnet.build import stop_devnet

    print(stop_devnet(Path(args.state_dir) if args.state_dir else None))


def _devnet_status(args: argparse.Namespace) -> None:
    from chainrisk.devnet.manifest import read_manifest
    from chainrisk.devnet.summary import status_lines

    manifest = read_manifest(Path(args.state_dir) / "manifest.json" if args.state_dir else None)
    running = _pid_alive(int(manifest["pid"]))
    if args.json:
        print(json.dumps({"running": running, **manifest}, indent=2))
        return
    for line in status_lines(manifest, running):
        print(line)


def _devnet_govern(args: argparse.Namespace) -> None:
    from chainrisk.devnet.governance import govern
    from chainrisk.devnet.manifest import manifest_path, read_manifest
    from chainrisk.devnet.node import TransactionFailed
    from chainrisk.rpc import RpcClient

    path = Path(args.state_dir) / "manifest.json" if args.state_dir else manifest_path()
    manifest = read_manifest(path)
    if not _pid_alive(int(manifest["pid"])):
        raise UserError("the devnet is not running; start it with `chainrisk devnet up`")
    with RpcClient(manifest["rpc_url"]) as rpc:
        try:
            moves = govern(rpc, manifest)
        except TransactionFailed as exc:
            raise UserError(f"the devnet's governance proposal did not pass: {exc}") from None
        head = rpc.call("eth_getBlockByNumber", ["latest", False])
    # The manifest's head is the chain's now (`devnet status`, the Devnet page).
    manifest |= {
        "head_block": int(head["number"], 16),
        "head_block_hash": head["hash"],
        "head_timestamp": int(head["timestamp"], 16),
    }
    path.write_text(json.dumps(manifest, indent=2))
    for move in moves:
        print(move.what)
    print(
        f"passed by block {manifest['head_block']}; `chainrisk run --devnet` reads the changes "
        "(mart_parameter_changes, Markets page)"
    )


def _index_config(args: argparse.Namespace) -> Any:
    """The markets to index: from --config, the devnet, or one market named on the command line."""
    from chainrisk.config import Config, MarketConfig, devnet_config, load_config, market_config

    if args.config:
        if args.devnet or args.market or args.address:
            raise UserError("--config names the markets; drop --devnet, --market and --address")
        config = load_config(Path(args.config))
        return replace(config, db=Path(args.db) if args.db else config.db, rpc_url=args.rpc_url or config.rpc_url)
    db = Path(args.db or "chainrisk.duckdb")
    if args.devnet:
        from chainrisk.devnet.manifest import read_manifest

        config = devnet_config(read_manifest(), db)
        if args.protocol:
            markets = [m for m in config.markets if m.protocol == args.protocol]
            if not markets:
                known = ", ".join(sorted({m.protocol for m in config.markets}))
                raise UserError(f"the devnet has no {args.protocol!r} market; give --protocol {known} or drop it")
            config = replace(config, markets=markets)
        return config
    from chainrisk.config import check_address

    entry: dict[str, Any] = {}
    if args.market:
        entry["preset"] = args.market
    if args.protocol:
        entry["protocol"] = args.protocol
    if args.address:
        entry["address"] = check_address(args.address, "--address")
    if args.usd_oracle:
        entry["usd_oracle"] = check_address(args.usd_oracle, "--usd-oracle")
    for option in args.option or []:
        key, sep, value = option.partition("=")
        if not sep or not key or key in entry:
            raise UserError(f"--option {option!r}: give KEY=VALUE with an adapter option, e.g. urns=vaults.txt")
        entry[key] = value
    if "preset" not in entry and "address" not in entry:
        raise UserError("give --address (with --protocol), --market NAME, --devnet or --config FILE")
    if "preset" not in entry:
        entry.setdefault("protocol", "aave-v3")
    market: MarketConfig = market_config(entry, "command line")
    return Config(db, args.rpc_url, None, [market])


def _index(args: argparse.Namespace) -> None:
    from chainrisk.config import resolve_rpc_url
    from chainrisk.jobs.lock import writer_lock
    from chainrisk.rpc import use_settings
    from chainrisk.store.db import keep_open

    if args.from_block is not None and args.to_block is not None and args.from_block > args.to_block:
        raise UserError(f"--from-block {args.from_block} is after --to-block {args.to_block}; swap them")
    config = _with_aggregate_calls(_index_config(args), args)
    _check_db(config.db, create=True)
    rpc_url = resolve_rpc_url(args.rpc_url or config.rpc_url)
    with writer_lock(config.db, "index"), keep_open(config.db), use_settings(config.rpc_settings()):
        _index_markets(args, config, rpc_url)


def _publish(db: Path) -> None:
    """Publishes what is stored for readers."""
    from chainrisk.store.db import Store

    with Store(db) as store:
        store.publish()


def _index_markets(args: argparse.Namespace, config: Any, rpc_url: str) -> None:
    """Indexes every market (jobs.run's one market loop), then publishes when at least one succeeded (also after a
    partial failure: the markets that worked become readable). A failure before anything is stored leaves every file
    as it was."""
    from chainrisk.jobs.index import faults_line, quality_line
    from chainrisk.jobs.run import IndexOptions, index_markets
    from chainrisk.rpc import RpcUsage

    options = IndexOptions(args.from_block, args.to_block, args.confirmations, args.log_span)
    done = index_markets(config, rpc_url, options)
    if len(config.markets) == 1 and done.failures:
        raise UserError(next(iter(done.failures.values())))
    for name, line in done.failures.items():
        print(f"chainrisk: error: {name}: {line}", file=sys.stderr)
    for report in done.reports:
        reorg = (
            f"; reorg repaired, rewound to block {report.reorg_rewound_to}"
            if report.reorg_rewound_to is not None
            else ""
        )
        if report.faults_absorbed:
            reorg += f"; absorbed {faults_line(report.faults_absorbed)}"
        if report.data_quality:
            reorg += f"; warning: {quality_line(report.data_quality, len(report.markets_with_unknowns))}"
        print(
            f"indexed {report.protocol} {report.market} on chain {report.chain_id}: blocks "
            f"{report.from_block}..{report.to_block}, {report.events} new events, {report.wallets} accounts "
            f"({report.wallets_with_debt} with debt) at block {report.to_block} in {report.seconds:.1f} s{reorg}; "
            f"{RpcUsage(report.rpc_requests, report.rpc_calls).line()}; database {config.db}"
        )
    failures = len(done.failures)
    if failures == len(config.markets):
        raise UserError(f"all {failures} markets failed (see above); fix those errors and run again")
    _publish(config.db)
    if failures:
        raise UserError(f"{failures} of {len(config.markets)} markets failed (see above); the others are stored")


def _presets(args: argparse.Namespace) -> None:
    from chainrisk.protocols.adapter import adapters, all_presets

    takes = {name: adapter.option_names for name, adapter in adapters().items()}
    for preset in all_presets().values():
        options = " ".join(f"{key}={value}" for key, value in preset.options)
        if "usd_oracle" in takes[preset.protocol] and not options:
            feeds = " or usd_feeds" if "usd_feeds" in takes[preset.protocol] else ""
            options = (
                "no usd_oracle: no Aave V3 oracle on this chain; USD from the market's own oracle or price feed where "
                f"it quotes USD, else unknown unless you give one{feeds}"
            )
        line = f"{preset.name:40} {preset.protocol:12} chain {preset.chain_id:<12} {preset.address}"
        print(f"{line}  {options}".rstrip())


def _score(args: argparse.Namespace) -> None:
    from chainrisk.jobs.lock import writer_lock
    from chainrisk.jobs.score import score

    _check_db(Path(args.db), create=False)
    with writer_lock(Path(args.db), "score"):
        report = score(Path(args.db))
    print(
        f"scored {report.wallets} wallets in {report.markets} market(s), {report.path}: "
        f"{report.liquidatable} liquidatable now; "
        f"wrote wallet_risk, position_risk, liquidation_curve to {args.db} and published it in {report.seconds:.1f} s"
    )


def _chains(args: argparse.Namespace) -> None:
    from chainrisk.config import resolve_rpc_url
    from chainrisk.jobs.chains import index_chains
    from chainrisk.jobs.lock import writer_lock

    if args.devnet and (args.rpc_url or args.config):
        raise UserError("give --devnet, or --rpc-url URL / --config FILE, not both")
    if args.config:
        _chains_of_config(args)
        return
    db = Path(args.db or "chainrisk.duckdb")
    _check_db(db, create=False)
    if args.devnet:
        from chainrisk.devnet.manifest import read_manifest

        rpc_url = str(read_manifest()["rpc_url"])
    else:
        rpc_url = resolve_rpc_url(args.rpc_url)
    with writer_lock(db, "chains"):
        report = index_chains(rpc_url, db)
    print(f"{report.line()}; {_chain_tables_written(db)}")


def _chain_tables_written(db: Path) -> str:
    """What `chains` prints once its tables are written and published."""
    tables = "asset_links, collateral_chains, wallet_exposure, wallet_lookthrough, base_asset_exposure"
    return f"wrote {tables} to {db} and published it"


def _chains_of_config(args: argparse.Namespace) -> None:
    """`chainrisk chains --config`: every chain of the config's markets, each through its own node with the config's
    RPC settings ([rpc_headers], aggregate_calls), as `run` looks through; published once. A chain that fails is
    said in one line after the others are stored."""
    from chainrisk.config import load_config, resolve_rpc_url
    from chainrisk.jobs.lock import writer_lock
    from chainrisk.jobs.run import look_through, market_urls
    from chainrisk.rpc import use_settings
    from chainrisk.store.db import Store, keep_open

    config = load_config(Path(args.config))
    config = replace(config, db=Path(args.db) if args.db else config.db, rpc_url=args.rpc_url or config.rpc_url)
    _check_db(config.db, create=False)
    url_of, _ = market_urls(config, resolve_rpc_url(config.rpc_url))  # a chain without a node: nothing to read
    failures: dict[str, str] = {}
    with writer_lock(config.db, "chains"), keep_open(config.db), use_settings(config.rpc_settings()):
        reports = look_through(config, list(dict.fromkeys(url_of.values())), None, failures)
        if reports:
            with Store(config.db) as store:
                store.publish()
    for report in reports:
        print(f"{report.line()}; written to {config.db}")
    if failures:
        raise UserError(f"chains: {failures['chains']}" + (" (the other chains are stored)" if reports else ""))
    print(_chain_tables_written(config.db))


def _credit(args: argparse.Namespace) -> None:
    from chainrisk.credit.scorecard import Scorecard
    from chainrisk.jobs import credit
    from chainrisk.jobs.lock import writer_lock

    command = args.credit_command
    db = Path(args.db or "chainrisk.duckdb")
    if command == "history":
        from chainrisk.jobs.credit_history import backfill
        from chainrisk.jobs.run import parse_interval
        from chainrisk.rpc import use_settings

        config, rpc_url = _job_config(args)
        every = int(parse_interval(args.every))
        with writer_lock(config.db, "credit history"), use_settings(config.rpc_settings()):
            sampled = backfill(config, rpc_url, every_s=every, from_block=args.from_block, to_block=args.to_block)
        print(sampled.line())
        return
    if command == "sanity":  # reads the Aave V2 file, not a database
        from chainrisk.devnet.toolchain import shared_prices_dir

        model = Scorecard.load(Path(args.model) if args.model else credit.DEFAULT_MODEL)
        prices = shared_prices_dir()
        path = Path(args.liquidations) if args.liquidations else prices.parent.parent / "aave_v2" / "liquidations.csv"
        _emit(credit.sanity_check(model, path, prices), "table", None)
        return
    _check_db(db, create=False)
    if args.horizon_days is not None and not 1 <= args.horizon_days <= 365:
        raise UserError("--horizon-days must be between 1 and 365")
    if command == "train":
        history = credit.read_history(db, args.chain_id)
        until = credit.parse_when(history, args.until) if args.until else int(history.samples["block_number"][-1])
        until_ts = int(history.samples.filter(history.samples["block_number"] == until)["block_timestamp"][0])
        card, cutoffs, rows = credit.train_model(
            history, until_ts, args.horizon_days, args.every_days, args.min_history_days
        )
        _refuse_writing_over_store(args.out, db, "--out")
        card.save(Path(args.out))
        kept = ", ".join(f.name for f in card.features)
        print(
            f"trained {card.version} on {rows.height} borrower-cutoffs ({card.trained['liquidated']} liquidated "
            f"within {args.horizon_days} days) at {len(cutoffs)} cutoffs; {len(card.features)} features: {kept}; "
            f"saved to {args.out}"
        )
        return
    if command == "evaluate":
        history = credit.read_history(db, args.chain_id)
        evaluations = [
            credit.evaluate_at(
                history, credit.parse_when(history, at), args.horizon_days, args.every_days, args.min_history_days
            )
            for at in args.at
        ]
        with writer_lock(db, "credit evaluate"):
            run_id = credit.store_evaluations(db, evaluations, args.horizon_days, history.chain_id)
        for e in evaluations:
            print("\n".join(e.lines()))
            print(
                "  calibration by band: "
                + "; ".join(
                    f"{r['bucket']} ({r['score_min']}-{r['score_max']}, {r['wallets']} wallets): predicted "
                    f"{r['predicted_pd']:.1%}, observed {r['observed_rate']:.1%}"
                    for r in e.calibration.iter_rows(named=True)
                )
            )
        if args.model_out:
            _refuse_writing_over_store(args.model_out, db, "--model-out")
            evaluations[-1].model.save(Path(args.model_out))
            print(f"saved the model trained for the last cutoff to {args.model_out}")
        print(f"wrote credit_evaluations, credit_calibration and credit_regimes (run {run_id}) to {db}")
        return
    model = Scorecard.load(Path(args.model) if args.model else credit.DEFAULT_MODEL)
    with writer_lock(db, "credit"):
        report = credit.score_wallets(db, model, args.as_of, chain_id=args.chain_id, target_pd=args.target_pd)
    print(f"{report.line()}; wrote credit_scores, credit_features, credit_advice to {db} and published it")


def _add_credit_commands(commands: Any) -> None:
    credit = commands.add_parser(
        "credit", help="credit scores 300-850 with reasons and advice (subcommands: history, train, evaluate, sanity)"
    )

    def common(sub: argparse.ArgumentParser, top: bool = False) -> None:
        # Given before or after the subcommand: a subcommand's own default would overwrite what was given before it
        # (`credit --db X history`), so only `credit` itself has defaults.
        def default(value: object) -> object:
            return value if top else argparse.SUPPRESS

        sub.add_argument(
            "--db", default=default(None), help="DuckDB file (default chainrisk.duckdb; history: the config's db)"
        )
        sub.add_argument(
            "--chain-id", type=COUNT, default=default(None), help="chain to use when the file holds several"
        )
        sub.add_argument(
            "--horizon-days", type=POSITIVE, default=default(30), help="label: liquidated within this many days"
        )
        sub.set_defaults(handler=_credit)

    common(credit, top=True)
    credit.add_argument("--as-of", help="score as of this block number or date (default: the latest sample)")
    credit.add_argument("--model", help="a model file from `credit train` (default: the bundled devnet model)")
    credit.add_argument(
        "--target-pd",
        type=_float_between(0, 0.999999, "a probability above 0 and below 1"),
        default=0.02,
        help="PD ceiling of the suggested LTV (default 0.02)",
    )
    subs = credit.add_subparsers(dest="credit_command")
    history = subs.add_parser("history", help="sample health, holdings and look-through at past blocks")
    history.add_argument("--config", help="a chainrisk.toml naming the markets")
    history.add_argument("--devnet", action="store_true", help="the local devnet's markets")
    history.add_argument("--rpc-url", help="JSON-RPC endpoint (an archive node for old blocks)")
    history.add_argument("--every", default="1d", help="sample spacing in chain time: 12h, 1d (default 1d)")
    history.add_argument("--from-block", type=COUNT, help="first block (default: the first stored event)")
    history.add_argument("--to-block", type=COUNT, help="last block (default: where stored events end)")
    history.add_argument("--aggregate-calls", type=int, help=AGGREGATE_HELP)
    common(history)
    train = subs.add_parser("train", help="fit the scorecard on the stored history and save the model file")
    train.add_argument("--out", required=True, help="model file to write (JSON)")
    train.add_argument("--until", help="train only on label windows closed by this block or date (default: all)")
    train.add_argument("--every-days", type=POSITIVE, default=7, help="days between training cutoffs (default 7)")
    train.add_argument("--min-history-days", type=COUNT, default=30, help="history before the first cutoff")
    common(train)
    evaluate = subs.add_parser("evaluate", help="out-of-time AUC/KS/Brier/calibration against health baselines")
    evaluate.add_argument("--at", action="append", required=True, help="cutoff T (block or date; repeatable)")
    evaluate.add_argument("--every-days", type=POSITIVE, default=7, help="days between training cutoffs (default 7)")
    evaluate.add_argument("--min-history-days", type=COUNT, default=30, help="history before the first cutoff")
    evaluate.add_argument("--model-out", help="also save the model trained for the last --at here")
    common(evaluate)
    sanity = subs.add_parser("sanity", help="the model's liquidation-history points on Aave V2's repeat liquidations")
    sanity.add_argument("--model", default=argparse.SUPPRESS, help="model file (default: the bundled devnet model)")
    sanity.add_argument("--liquidations", help="liquidations.csv (default: ../shared/data/aave_v2/liquidations.csv)")
    common(sanity)


def _job_config(args: argparse.Namespace) -> tuple[Any, str]:
    """The config of `run`/`watch`: a chainrisk.toml, or the local devnet's markets."""

    from chainrisk.config import devnet_config, load_config, resolve_rpc_url

    if args.config and args.devnet:
        raise UserError("give --config FILE or --devnet, not both")
    if args.config:
        config = load_config(Path(args.config))
    elif args.devnet:
        from chainrisk.devnet.manifest import read_manifest

        config = devnet_config(read_manifest(), Path(args.db or "chainrisk.duckdb"))
    else:
        raise UserError("give --config FILE (see chainrisk.config for the format) or --devnet")
    if args.db:
        config = replace(config, db=Path(args.db))
    config = _with_aggregate_calls(config, args)
    _check_db(config.db, create=True)
    return config, resolve_rpc_url(args.rpc_url or config.rpc_url)


def _with_aggregate_calls(config: Any, args: argparse.Namespace) -> Any:
    """`config` with --aggregate-calls, where given, in place of its own."""
    from chainrisk.config import aggregate_calls

    if args.aggregate_calls is None:
        return config
    return replace(config, aggregate_calls=aggregate_calls("--aggregate-calls", args.aggregate_calls))


def _run(args: argparse.Namespace) -> None:
    from chainrisk.jobs.run import run_once

    config, rpc_url = _job_config(args)
    report = run_once(config, rpc_url)
    print(report.summary())
    if report.status == "failed":
        raise UserError(f"run {report.run_id} failed: {'; '.join(report.failures.values())}")


def _watch(args: argparse.Namespace) -> None:
    from chainrisk.jobs.run import Watch, parse_interval

    every = parse_interval(args.every)
    config, rpc_url = _job_config(args)
    Watch(config, rpc_url, every, args.max_runs).loop()


def _printable(frame: Any, fmt: str) -> Any:
    """The frame with what text formats cannot write made text: dates and times beyond what polars can format
    (DuckDB's 'infinity' dates and timestamps) as 'infinity' / '-infinity', and for CSV and JSON bytes as 0x-hex and
    maps as JSON text (polars writes neither). Before, each stopped the command with a traceback or a Rust panic."""
    import polars as pl

    # Physical values polars' dates and times format: chrono's years +-262,143 (days, microseconds, milliseconds).
    reach = {"Date": 95_000_000, "us": 8_200_000_000_000_000_000, "ms": 8_200_000_000_000_000}
    fixed = []
    for name, dtype in frame.schema.items():
        column = pl.col(name)
        limit = reach.get("Date" if dtype == pl.Date else getattr(dtype, "time_unit", "") or "")
        if limit is not None and dtype.is_temporal():
            physical = column.to_physical()
            inside = physical.abs() < limit
            if frame.select(inside.fill_null(True).all()).item():
                continue  # every value formats: the column is written as polars writes it
            # Masked before the cast: a value out of reach is never formatted (that is what panics).
            text = pl.when(inside).then(column).cast(pl.Utf8)
            beyond = (
                pl.when(physical > 0).then(pl.lit("infinity")).when(physical.is_not_null()).then(pl.lit("-infinity"))
            )
            fixed.append(pl.coalesce(text, beyond).alias(name))
        elif fmt in ("csv", "json") and dtype == pl.Binary:
            fixed.append(pl.concat_str(pl.lit("0x"), column.bin.encode("hex")).alias(name))
        elif fmt == "json" and type(dtype).__name__ == "Map":
            values = [None if v is None else json.dumps(v, default=str) for v in frame[name].to_list()]
            fixed.append(pl.lit(pl.Series(name, values, pl.Utf8)).alias(name))
    return frame.with_columns(fixed) if fixed else frame


def _emit(frame: Any, fmt: str, out: str | None) -> None:
    """Writes a result frame as a table, CSV, JSON lines or Parquet (to --out, or stdout for text formats)."""
    import polars as pl

    if fmt != "parquet":
        frame = _printable(frame, fmt)
    try:
        _write(frame, fmt, out)
    except (pl.exceptions.PolarsError, pl.exceptions.PanicException) as exc:
        raise UserError(
            f"cannot write the result as {fmt} ({first_line(exc)[:160]}); cast the column to VARCHAR in the query, "
            "or use another --format"
        ) from None


def _write(frame: Any, fmt: str, out: str | None) -> None:
    import polars as pl

    if fmt == "parquet":
        if not out:
            raise UserError("--format parquet needs --out FILE")
        frame.write_parquet(out)
        print(f"wrote {frame.height} rows to {out}")
        return
    if fmt == "csv":
        # CSV has no nested values: a list or struct column (stg_wallet_portfolio's protocols) is written as JSON text.
        nested = [name for name, dtype in frame.schema.items() if dtype.is_nested()]
        text = frame.with_columns(
            pl.Series(name, [None if v is None else json.dumps(v, default=str) for v in frame[name].to_list()], pl.Utf8)
            for name in nested
        ).write_csv()
    elif fmt == "json":
        text = frame.write_ndjson()
    else:
        with pl.Config(tbl_rows=min(frame.height, 200), tbl_cols=-1, fmt_str_lengths=66, tbl_width_chars=200):
            text = str(frame) + "\n"
    if out:
        Path(out).write_text(text)
        print(f"wrote {frame.height} rows to {out}")
    else:
        sys.stdout.write(text)


def _sql(args: argparse.Namespace) -> None:
    from chainrisk.store.console import ConsoleLimits, run_console_query

    _check_reader_db(Path(args.db))
    if args.out:
        _refuse_writing_over_store(args.out, Path(args.db), "--out")
    result = run_console_query(Path(args.db), args.query, ConsoleLimits(max_rows=args.max_rows, timeout_s=args.timeout))
    _emit(result.frame, args.format, args.out)
    if result.truncated:
        print(f"chainrisk: note: result cut at {args.max_rows:,} rows (--max-rows)", file=sys.stderr)


def _query(args: argparse.Namespace) -> None:
    from chainrisk.store.console import ConsoleLimits, run_console_query
    from chainrisk.store.views import list_queries, query_sql

    if args.list or not args.name:
        for query in list_queries():
            print(f"{query.name:32} {query.description}")
        return
    # The view's SQL with what it reads inlined: it runs on files scored before the view existed too.
    sql = query_sql(args.name)
    _check_reader_db(Path(args.db))
    if args.out:
        _refuse_writing_over_store(args.out, Path(args.db), "--out")
    result = run_console_query(Path(args.db), sql, ConsoleLimits(max_rows=args.max_rows, timeout_s=args.timeout))
    _emit(result.frame, args.format, args.out)
    if result.truncated:
        print(f"chainrisk: note: result cut at {args.max_rows:,} rows (--max-rows)", file=sys.stderr)


def _check_reader_db(db: Path) -> None:
    """Readers open the published snapshot; a --db that exists must still be a database (not a typo'd other file)."""
    if db.exists():
        _check_db(db, create=False)


def _export(args: argparse.Namespace) -> None:
    from chainrisk.jobs.export import export_parquet

    _check_reader_db(Path(args.db))
    _refuse_writing_over_store(args.to, Path(args.db), "--to", folder=True)
    report = export_parquet(Path(args.db), Path(args.to), overwrite=args.overwrite)
    written = sum(1 for n in report.tables.values() if n)
    print(
        f"export {report.sequence}: {sum(report.tables.values()):,} new rows in {written} tables "
        f"({report.files} Parquet files, partitioned by chain_id/protocol) added to {report.out} "
        f"in {report.seconds:.1f} s"
    )


def _check_date_range(first: str, start: str | None, second: str, end: str | None) -> None:
    """Dates given to a model, read before it runs: each a date (the option named), the start before the end."""
    from chainrisk.risk.calibration import CalibrationError
    from chainrisk.risk.replay import parse_date

    try:
        begin = parse_date(start, first) if start else None
        finish = parse_date(end, second) if end else None
    except CalibrationError as exc:
        raise UserError(str(exc)) from None
    if begin is not None and finish is not None and begin >= finish:
        raise UserError(f"{first} {start} is not before {second} {end}; swap them")


def _risk_settings(args: argparse.Namespace) -> Any:
    from chainrisk.config import load_risk_settings
    from chainrisk.jobs.risk import RiskSettings

    settings = RiskSettings(**load_risk_settings(Path(args.config))) if args.config else RiskSettings()
    if getattr(args, "prices", None):  # the command line wins over the config
        where, prices = "--prices", Path(args.prices).expanduser()
    elif settings.prices is not None:
        where, prices = "[risk] prices", settings.prices
    else:
        return settings
    if not prices.is_dir() or not any(prices.glob("*_usd.csv")):
        raise UserError(f"{where}: {prices} is not a folder of <SERIES>_usd.csv price files")
    return replace(settings, prices=prices)


def _risk(args: argparse.Namespace) -> None:
    from chainrisk.jobs import risk
    from chainrisk.jobs.lock import writer_lock

    db = Path(args.db)
    _check_db(db, create=False)
    settings = _risk_settings(args)
    kind = args.risk_command
    if kind == "stress":
        from chainrisk.risk.calibration import CalibrationError
        from chainrisk.risk.replay import WINDOWS, window

        try:
            if args.start or args.end:
                windows = [window(args.name, args.start, args.end)]
            else:
                windows = [window(n) for n in (args.window or list(WINDOWS))]
        except CalibrationError as exc:
            raise UserError(str(exc)) from None
    elif kind in ("cascade", "contagion"):
        shock = risk.parse_shock(args.shock or [])
    elif kind == "var":
        start, _, end = (args.backtest or "").partition("..")
        if args.backtest and (not start or not end):
            raise UserError(f"--backtest {args.backtest!r}: write START..END, e.g. 2022-01-01..2022-12-31")
        _check_date_range("--calibration-start", args.calibration_start, "--calibration-end", args.calibration_end)
        if args.backtest:
            _check_date_range("--backtest start", start, "its end", end)
    with writer_lock(db, f"risk {kind}"):
        if kind == "stress":
            report = risk.run_stress(db, windows, args.step_hours, settings)
        elif kind == "var":
            report = risk.run_var(
                db,
                args.scenarios,
                args.seed,
                args.horizons,
                args.confidences,
                args.method,
                (args.calibration_start, args.calibration_end),
                (start, end) if args.backtest else None,
                args.backtest_scenarios,
                settings,
            )
        elif kind == "optimise":
            report = _optimise(args, db)
        elif kind == "contagion":
            report = risk.run_contagion(db, shock, args.max_rounds)
        else:
            report = risk.run_cascade(db, shock, settings, args.max_rounds)
    for line in report.lines:
        print(line)
    print(f"risk run {report.run_id} ({report.kind}) written to {db} and published in {report.seconds:.1f} s")


def _optimise(args: argparse.Namespace, db: Path) -> Any:
    """`risk optimise`: balances read from the nodes given (one per chain), with the config's RPC settings."""
    from chainrisk.config import load_rpc_settings
    from chainrisk.jobs import risk
    from chainrisk.rpc import RpcSettings, use_settings

    if args.devnet and args.rpc_url:
        raise UserError("give --rpc-url URL or --devnet, not both")
    urls: list[str] = list(args.rpc_url or [])
    if args.devnet:
        from chainrisk.devnet.manifest import read_manifest

        urls = [str(read_manifest()["rpc_url"])]
    settings = load_rpc_settings(Path(args.config)) if args.config and urls else RpcSettings()
    with use_settings(settings):
        return risk.run_optimise(db, args.target, args.below, args.limit, args.swap_into or (), urls)


def _csv_of(kind: Any, what: str) -> Any:
    def parse(text: str) -> list[Any]:
        try:
            values = [kind(x) for x in text.split(",") if x.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of {what}") from None
        if not values:
            raise argparse.ArgumentTypeError(f"give at least one of {what}")
        return values

    return parse


def _confidences(text: str) -> list[float]:
    values: list[float] = _csv_of(float, "confidences")(text)
    if not all(0.5 <= c < 1 for c in values):
        raise argparse.ArgumentTypeError(f"{text!r}: confidences are between 0.5 and 1, e.g. 0.95,0.99")
    return values


def _horizons(text: str) -> list[int]:
    values: list[int] = _csv_of(int, "hours")(text)
    if not all(1 <= h <= 24 * 90 for h in values):
        raise argparse.ArgumentTypeError(f"{text!r}: horizons are hours from 1 to 2160, e.g. 24,168")
    return values


def _add_risk_commands(commands: Any) -> None:
    risk = commands.add_parser("risk", help="risk models: replays, VaR/ES, optimisation, cascades, contagion")
    subs = risk.add_subparsers(dest="risk_command", required=True)

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--db", default="chainrisk.duckdb", help="DuckDB file (default chainrisk.duckdb)")
        sub.add_argument("--config", help="a chainrisk.toml whose [risk] table maps symbols to price series etc.")
        sub.add_argument(
            "--prices",
            help="folder of hourly USD price files, <SERIES>_usd.csv (default: [risk] prices, $CHAINRISK_PRICES_DIR, "
            "else ../shared/data/prices/hourly_usd)",
        )
        sub.set_defaults(handler=_risk)

    stress = subs.add_parser("stress", help="replay real price windows (May 2021, LUNA, stETH, FTX, or your dates)")
    stress.add_argument("--window", action="append", help="a named window (repeatable; default: all of them)")
    stress.add_argument("--start", help="your own window's first day, e.g. 2022-01-20")
    stress.add_argument("--end", help="your own window's last day")
    stress.add_argument("--name", help="a name for your own window")
    stress.add_argument("--step-hours", type=POSITIVE, default=1, help="hours between steps (default 1)")
    common(stress)
    var = subs.add_parser("var", help="Monte-Carlo VaR / ES, backtested parameter advice (LT/LTV/bonus/cap)")
    var.add_argument(
        "--scenarios",
        type=_int_between(1, 1_000_000, "1 to 1,000,000 scenarios"),
        default=10_000,
        help="scenarios per horizon (default 10000)",
    )
    var.add_argument("--seed", type=COUNT, default=0, help="RNG seed: the same seed gives the same figures")
    var.add_argument("--horizons", type=_horizons, default=[24, 168], help="hours, comma-separated (default 24,168)")
    var.add_argument("--confidences", type=_confidences, default=[0.95, 0.99], help="default 0.95,0.99")
    var.add_argument("--method", choices=["ewma", "sample"], default="ewma", help="covariance estimate (default ewma)")
    var.add_argument("--calibration-start", help="first day of the calibration data (default: all of it)")
    var.add_argument("--calibration-end", help="last day of the calibration data")
    var.add_argument("--backtest", help="START..END: Kupiec backtest of the 24 h 99 %% liquidation VaR over it")
    var.add_argument("--backtest-scenarios", type=POSITIVE, default=2_000, help="scenarios per backtest period")
    common(var)
    optimise = subs.add_parser("optimise", help="cheapest plans to restore a target health; threshold sensitivity")
    optimise.add_argument("--target", type=HEALTH_FACTOR, default=1.2, help="health factor to reach (default 1.2)")
    optimise.add_argument(
        "--below", type=HEALTH_FACTOR, default=1.1, help="plan for wallets under this health (default 1.1)"
    )
    optimise.add_argument("--limit", type=POSITIVE, default=200, help="weakest wallets to plan for (default 200)")
    optimise.add_argument("--swap-into", action="append", help="collateral a swap may buy, e.g. USDC (repeatable)")
    optimise.add_argument(
        "--rpc-url",
        action="append",
        help="read the wallets' token balances from this node (repeatable: one per chain; else: unlimited); "
        "--config's [rpc_headers] are sent",
    )
    optimise.add_argument("--devnet", action="store_true", help="read balances from the local devnet")
    common(optimise)
    cascade = subs.add_parser("cascade", help="liquidation cascade through market depth from a price shock")
    cascade.add_argument("--shock", action="append", help="SYMBOL=-30%% (repeatable), e.g. --shock WETH=-30%%")
    cascade.add_argument("--max-rounds", type=POSITIVE, default=50, help="rounds before giving up (default 50)")
    common(cascade)
    contagion = subs.add_parser(
        "contagion", help="a base-asset shock through collateral chains and bad debt, round by round"
    )
    contagion.add_argument("--shock", action="append", help="BASE=-30%% (repeatable), e.g. --shock stETH=-30%%")
    contagion.add_argument("--max-rounds", type=POSITIVE, default=25, help="rounds before giving up (default 25)")
    common(contagion)


def _version() -> str:
    """The installed distribution's version (a checkout run without installing says so)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("chainrisk")
    except PackageNotFoundError:
        return "(not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="chainrisk", description=__doc__)
    parser.add_argument("--version", action="version", version=f"chainrisk {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    devnet = commands.add_parser(
        "devnet", help="local chain: real Aave V3.0.2, V3.6 and Morpho Blue; Comet, Maker and Liquity stand-ins"
    )
    devnet_commands = devnet.add_subparsers(dest="devnet_command", required=True)
    up = devnet_commands.add_parser("up", help="start anvil, deploy, populate and replay prices")
    up.add_argument("--wallets", type=int, default=300, help="wallets in the population (default 300)")
    up.add_argument(
        "--days",
        type=_float_between(0, 3650, "days above 0, at most 3650"),
        default=30,
        help="days of real price history to replay (default 30)",
    )
    up.add_argument("--seed", type=int, default=1, help="RNG seed; the same seed builds the same chain")
    up.add_argument("--port", type=int, default=8545, help="loopback port for anvil (default 8545)")
    up.add_argument("--start", default="2022-05-01", help="first day of the price window (default 2022-05-01)")
    up.add_argument("--step-hours", type=int, default=4, help="hours between price updates (default 4)")
    up.add_argument("--replace", action="store_true", help="stop a running devnet first")
    up.add_argument(
        "--protocols",
        help="comma list of the protocols to build (default: every one; an unknown name lists them); "
        "Aave V3.0.2 and Morpho Blue are always built",
    )
    up.set_defaults(handler=_devnet_up)
    compile_ = devnet_commands.add_parser(
        "compile",
        help="compile the contracts `devnet up` deploys into the cache (solcjs, ~1 min on a new checkout), "
        "without starting a chain",
    )
    compile_.add_argument("--protocols", help="comma list, as for `devnet up` (default: every one)")
    compile_.set_defaults(handler=_devnet_compile)
    down = devnet_commands.add_parser("down", help="stop the devnet")
    down.set_defaults(handler=_devnet_down)
    status = devnet_commands.add_parser("status", help="a short summary: chain, head, one line per protocol")
    status.add_argument("--json", action="store_true", help="print the whole manifest as JSON instead")
    status.set_defaults(handler=_devnet_status)
    govern = devnet_commands.add_parser(
        "govern",
        help="pass a governance proposal on the running devnet (Aave, Morpho, Comet and Maker settings moved: "
        "chainrisk.devnet.governance); the next `run --devnet` reads the changes",
    )
    govern.set_defaults(handler=_devnet_govern)
    for sub in (up, down, status, govern):
        sub.add_argument("--state-dir", help="folder for the manifest and logs (default .chainrisk/devnet)")

    index = commands.add_parser("index", help="index lending markets into DuckDB")
    index.add_argument("--rpc-url", help="JSON-RPC endpoint (default: the config's rpc_url, else ETH_RPC_URL)")
    index.add_argument("--config", help="a chainrisk.toml naming every market to index")
    from chainrisk.protocols.adapter import adapters

    found = adapters()
    index.add_argument("--protocol", help=f"{', '.join(sorted(found))} (default aave-v3)")
    index.add_argument(
        "--address",
        help="the contract to index: " + ", ".join(f"{a.label} {a.address_role}" for _, a in sorted(found.items())),
    )
    index.add_argument("--usd-oracle", help="an AaveOracle-compatible contract for USD prices (Morpho Blue, Comet)")
    index.add_argument(
        "--option",
        action="append",
        metavar="KEY=VALUE",
        help="an adapter option, e.g. maker's urns=FILE, or usd_feeds=TOKEN=FEED,TOKEN=FEED (Chainlink USD feeds by "
        "token, for Morpho Blue and Comet) and usd_feed_max_age=25h (older feed answers are named stale) (repeatable)",
    )
    index.add_argument(
        "--market", help="a preset such as aave-v3-ethereum, morpho-blue-ethereum, compound-v3-ethereum-usdc"
    )
    index.add_argument("--devnet", action="store_true", help="every market of the local devnet (from its manifest)")
    index.add_argument("--from-block", type=BLOCK, help="first block to read logs from")
    index.add_argument("--to-block", type=BLOCK, help="snapshot block (default: head minus confirmations)")
    index.add_argument("--confirmations", type=COUNT, help="blocks behind the head to stay (default 12; 0 on devnets)")
    index.add_argument("--db", help="DuckDB file (default: the config's db, else chainrisk.duckdb)")
    index.add_argument("--aggregate-calls", type=int, help=AGGREGATE_HELP)
    index.add_argument(
        "--log-span",
        type=POSITIVE,
        default=10_000,
        help="first eth_getLogs block span; adapts to the provider's limits",
    )
    index.set_defaults(handler=_index)

    presets = commands.add_parser("presets", help="every named market --market takes: protocol, chain and address")
    presets.set_defaults(handler=_presets)

    score = commands.add_parser("score", help="health, liquidation prices and curves for the latest snapshots")
    score.add_argument("--db", default="chainrisk.duckdb", help="DuckDB file (default chainrisk.duckdb)")
    score.set_defaults(handler=_score)

    chains = commands.add_parser("chains", help="asset graph and look-through exposure at the latest snapshot")
    chains.add_argument("--db", help="DuckDB file (default: the config's db, else chainrisk.duckdb)")
    chains.add_argument(
        "--rpc-url", help="JSON-RPC endpoint of the indexed chain (default: the config's rpc_url, else ETH_RPC_URL)"
    )
    chains.add_argument(
        "--config", help="a chainrisk.toml: every chain of its markets, through its nodes and [rpc_headers]"
    )
    chains.add_argument("--devnet", action="store_true", help="the local devnet")
    chains.set_defaults(handler=_chains)

    for name, help_text, handler in (
        ("run", "index every configured market, score, alert and publish once (cron-safe)", _run),
        ("watch", "`run` on a schedule until stopped", _watch),
    ):
        job = commands.add_parser(name, help=help_text)
        job.add_argument("--config", help="a chainrisk.toml: markets, alert rules, watchlists")
        job.add_argument("--devnet", action="store_true", help="the local devnet's markets (no alerts)")
        job.add_argument("--rpc-url", help="JSON-RPC endpoint (default: the config's rpc_url, else ETH_RPC_URL)")
        job.add_argument("--db", help="DuckDB file (default: the config's db)")
        job.add_argument("--aggregate-calls", type=int, help=AGGREGATE_HELP)
        if name == "watch":
            job.add_argument("--every", default="5m", help="interval: 30s, 5m, 1h (default 5m)")
            job.add_argument("--max-runs", type=POSITIVE, help="stop after this many runs (default: run until stopped)")
        job.set_defaults(handler=handler)

    def reader_options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--db", default="chainrisk.duckdb", help="DuckDB file (its published snapshot is read)")
        sub.add_argument("--format", choices=["table", "csv", "json", "parquet"], default="table")
        sub.add_argument("--out", help="write to this file instead of stdout (required for parquet)")
        sub.add_argument(
            "--max-rows",
            type=_int_between(1, 1_000_000_000, "1 to 1,000,000,000 rows"),
            default=1_000_000,
            help="cut results at this many rows",
        )
        sub.add_argument(
            "--timeout",
            type=_float_between(0, 86_400, "seconds above 0, at most 86400"),
            default=300.0,
            help="stop a query after this many seconds",
        )

    sql = commands.add_parser("sql", help="run one read-only SELECT over the published database")
    sql.add_argument("query", help='e.g. "SELECT * FROM mart_market_summary"')
    reader_options(sql)
    sql.set_defaults(handler=_sql)
    query = commands.add_parser("query", help="run a named view from queries/ (no name or --list: list them)")
    query.add_argument("name", nargs="?", help="e.g. mart_at_risk_positions")
    query.add_argument("--list", action="store_true", help="list the views with their descriptions")
    reader_options(query)
    query.set_defaults(handler=_query)
    export = commands.add_parser(
        "export", help="history and latest tables as a Parquet lake for Spark/Trino/DuckDB, adding only new rows"
    )
    export.add_argument("--db", default="chainrisk.duckdb", help="DuckDB file (its published snapshot is read)")
    export.add_argument("--format", choices=["parquet"], default="parquet")
    export.add_argument(
        "--to",
        "--out",
        dest="to",
        required=True,
        help="the lake folder: new, empty, or an earlier export's (then only rows new since it are added)",
    )
    export.add_argument(
        "--overwrite", action="store_true", help="rebuild the folder from the database (replaces what it holds)"
    )
    export.set_defaults(handler=_export)
    _add_risk_commands(commands)
    _add_credit_commands(commands)
    return parser


def _environment_error(exc: Exception) -> str | None:
    """One line for a failure of the machine rather than of chainrisk (full disk, permissions), or None (a bug:
    let its traceback show)."""
    if isinstance(exc, OSError):
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{exc.strerror or exc}{where}; {OS_FIXES.get(exc.errno or 0, 'check the path and run again')}"
    duckdb = sys.modules.get("duckdb")
    if duckdb is not None and isinstance(exc, duckdb.Error):
        # DuckDB reports the OS's reason in its message text (strerror), whatever exception class it raises.
        first = one_line(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        for code, fix in OS_FIXES.items():
            if os.strerror(code) in str(exc):
                return f"database write failed: {first}; {fix}"
        if isinstance(exc, duckdb.IOException):
            return f"database I/O failed: {first}; check the disk and the --db path, then run again"
    return None


def _stdout_gone() -> bool:
    """Whether standard output's reader has gone (`chainrisk sql ... | head`): then stdout becomes /dev/null, so
    nothing more is written to the closed pipe (not even the interpreter's flush at exit) and no error is printed,
    as for any command in a pipeline whose reader stopped early."""
    import select

    try:
        fd = sys.stdout.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        gone = any(events & select.POLLERR for _, events in poller.poll(0))
    except (OSError, ValueError, AttributeError):  # no real file behind stdout (a test's capture)
        return False
    if gone:
        os.dup2(os.open(os.devnull, os.O_WRONLY), fd)
    return gone


def _refuse_undecodable(argv: Sequence[str]) -> None:
    """One line for an argument that is not UTF-8 text (bytes the shell passed through, which Python keeps as
    surrogates): DuckDB, the query parser and the file names it opens take UTF-8 only (before: a TypeError in the SQL
    console's parser, a std::bad_cast opening such a --db)."""
    for position, arg in enumerate(argv, 1):
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            shown = arg.encode("utf-8", "surrogateescape").decode("ascii", "backslashreplace")
            raise UserError(
                f"argument {position} ({shown[:60]}) is not UTF-8 text; give queries, names and paths in UTF-8"
            ) from None


def main(argv: Sequence[str] | None = None) -> int:
    import logging

    # Log records go to stderr with any RPC credentials hidden (the handler is skipped when logging is set up).
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", handlers=[handler])
    for chatty in ("httpx", "httpcore"):  # one line per HTTP request drowns the run summaries
        logging.getLogger(chatty).setLevel(logging.WARNING)
    from chainrisk.jobs.lock import DatabaseBusy

    try:
        _refuse_undecodable(sys.argv[1:] if argv is None else argv)
        args = build_parser().parse_args(argv)
        args.handler(args)
    except DatabaseBusy as exc:
        print(f"chainrisk: busy: {one_line(str(exc))}", file=sys.stderr)
        return 75  # EX_TEMPFAIL: a cron wrapper can tell "try later" from a real failure
    except UserError as exc:
        print(f"chainrisk: error: {one_line(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("chainrisk: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError as exc:
        if not _stdout_gone():
            line = _environment_error(exc)
            print(f"chainrisk: error: {line}", file=sys.stderr)
            return 2
        return 141  # 128 + SIGPIPE, as a shell reports a pipeline's writer whose reader stopped (`| head`)
    except Exception as exc:
        line = _environment_error(exc)
        if line is None:
            raise
        print(f"chainrisk: error: {line}", file=sys.stderr)
        return 2
    return 0


#: Commands that write the database: run below interactive readers' CPU priority (the dashboard and analysts'
#: queries read published files on the same cores while a run computes).
WRITER_COMMANDS = frozenset({"run", "watch", "index", "score", "chains", "credit", "risk", "export"})


def console() -> None:
    """The `chainrisk` command: `main` in a process of its own, a writer command at CHAINRISK_NICE (default 10; 0
    keeps the priority it was started with)."""
    command = next((a for a in sys.argv[1:] if not a.startswith("-")), "")
    if command in WRITER_COMMANDS:
        raw = os.environ.get("CHAINRISK_NICE", "10")
        try:
            niceness = int(raw)
        except ValueError:
            print(f"chainrisk: error: CHAINRISK_NICE={raw!r} is not a whole number", file=sys.stderr)
            sys.exit(2)
        if niceness > 0:
            os.nice(niceness)
    sys.exit(main())


if __name__ == "__main__":
    console()
