"""Deploys the Maker/Sky stand-ins (chainrisk's own Solidity, not Maker's bytecode) and runs vaults through them:
vaults opened through the CDP manager and directly on the Vat, debt drawn at varied safety, months of stability
fees dripped, prices moved through the OSMs (a crash, then a pending next price), urns barked by a keeper and one
auction taken. Returns the manifest section the devnet records. `reset_stalled_auction` restarts one auction that
needs a reset: the main devnet's last act.

Used on its own by tests/test_index_maker.py and benchmarks/index_maker.py; the main devnet can call
`build_maker(builder, tokens=..., fund=...)` with its own WETH, WBTC and wstETH.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from decimal import Decimal, getcontext
from typing import Any

from chainrisk.abi import Abi, abi_encode, eth_call, function_selector, keccak
from chainrisk.devnet.node import DEPLOYER, BlockBuilder
from chainrisk.devnet.toolchain import CompiledContract, aave_artifact, standin_contracts

#: How every Maker contract on the devnet is labelled (manifest, README, dashboard).
MAKER_LABEL = "Maker/Sky stand-in (chainrisk's own Solidity, not Maker's bytecode)"
WAD, RAY, RAD = 10**18, 10**27, 10**45
SECONDS_PER_YEAR = 365 * 24 * 3600
#: The OSM's delay: a new source value becomes current one `poke` after the next, an hour apart.
HOP = 3600
#: Clipper: start the auction at 120 % of the OSM price, falling linearly to zero over three hours.
CLIP_BUF = Decimal("1.20")
CLIP_TAU = 3 * 3600
#: An auction needs a reset (`redo`) after 140 minutes or once its price is under 40 % of its start: the devnet's
#: choice, the shape of dss clip.sol's `tail` and `cusp` (governance files them per ilk on mainnet).
CLIP_TAIL = 140 * 60
CLIP_CUSP = Decimal("0.40")
#: Keeper of the devnet's Maker liquidations.
MAKER_KEEPER = "0x00000000000000000000000000000000006b6565"
#: A funder moves `amount` token units of `symbol` to `wallet` (queued on the builder).
Funder = Callable[[BlockBuilder, str, str, str, int], None]


@dataclass(frozen=True)
class IlkSpec:
    name: str  #: ilk, e.g. ETH-A
    gem: str  #: collateral symbol
    decimals: int  #: its decimals (WBTC: 8, joined through GemJoin5)
    price_usd: int  #: starting OSM price
    mat: Decimal  #: liquidation ratio (1.45 = 145 %)
    chop: Decimal  #: liquidation penalty factor (1.13 = 13 %)
    fee_per_year: Decimal  #: stability fee, compounded per second
    dust_dai: int  #: urn debt floor
    line_dai: int  #: ilk debt ceiling
    hole_dai: int  #: dai in auctions the ilk allows at once


#: Parameters close to Maker's for these ilks in 2022-2023 (mat 145-150 %, chop 13 %, dust 7,500 DAI).
ILKS: tuple[IlkSpec, ...] = (
    IlkSpec(
        "ETH-A",
        "WETH",
        18,
        2_000,
        Decimal("1.45"),
        Decimal("1.13"),
        Decimal("0.0225"),
        7_500,
        1_000_000_000,
        40_000_000,
    ),
    IlkSpec(
        "WBTC-A", "WBTC", 8, 30_000, Decimal("1.45"), Decimal("1.13"), Decimal("0.02"), 7_500, 500_000_000, 15_000_000
    ),
    IlkSpec(
        "WSTETH-A",
        "wstETH",
        18,
        2_200,
        Decimal("1.50"),
        Decimal("1.13"),
        Decimal("0.015"),
        7_500,
        500_000_000,
        10_000_000,
    ),
)
GLOBAL_LINE_DAI = 2_000_000_000
GLOBAL_HOLE_DAI = 60_000_000
#: The crash after the fee months, and the next prices left pending in the OSMs at the end (fraction of the price).
CRASH = {"ETH-A": Decimal("0.70"), "WBTC-A": Decimal("0.78"), "WSTETH-A": Decimal("0.70")}
NEXT = {"ETH-A": Decimal("0.95"), "WBTC-A": Decimal("0.92"), "WSTETH-A": Decimal("1.00")}
#: Collateral ratios the vaults open at (the crash leaves those under mat / crash unsafe).
OPEN_RATIOS = ("1.52", "1.6", "1.7", "1.85", "2.0", "2.2", "2.5", "3.0", "4.0")


def duty(fee_per_year: Decimal) -> int:
    """The per-second rate [ray] that compounds to `fee_per_year`: (1 + fee)^(1 / seconds a year)."""
    getcontext().prec = 60
    return int(((1 + fee_per_year) ** (Decimal(1) / SECONDS_PER_YEAR) * RAY).to_integral_value())


def bytes32(text: str) -> bytes:
    """`text` as a bytes32 (an ilk's name, a `file`'s parameter), zero-padded on the right."""
    return text.encode().ljust(32, b"\x00")


def overload_calldata(signature: str, *args: Any) -> str:
    """Calldata for an overloaded function (the stand-ins' several `file`s), named by its full signature."""
    types = signature[signature.index("(") + 1 : -1].split(",")
    return "0x" + (function_selector(signature) + abi_encode(types, list(args))).hex()


def _address(seed: str) -> str:
    return "0x" + keccak(seed.encode())[-20:].hex()


@dataclass
class MakerIlk:
    name: str  #: ilk
    symbol: str  #: gem symbol
    decimals: int  #: gem decimals
    gem: str  #: token
    join: str  #: GemJoin or GemJoin5
    pip: str  #: OSM
    source: str  #: the OSM's price source
    clip: str  #: Clipper
    calc: str  #: LinearDecrease
    price: int  #: the OSM's source value now [wad]


@dataclass
class MakerDeployment:
    chainlog: str
    vat: str
    spot: str
    jug: str
    dog: str
    vow: str
    dai: str
    dai_join: str
    cdp_manager: str
    ilk_registry: str
    ilks: dict[str, MakerIlk] = field(default_factory=dict)  #: by ilk name


@dataclass
class Vault:
    ilk: str  #: ilk name
    urn: str  #: the urn in the Vat
    owner: str  #: who controls it (the CDP manager's owner, or the urn itself)
    cdp_id: int | None  #: the manager's id; None for urns frobbed directly on the Vat
    via: str  #: cdp-manager, vat (frobbed directly) or fork (moved out of a manager vault with quit)


@dataclass(frozen=True)
class VaultPlan:
    wallet: str  #: who opens it
    ilk: str  #: ilk name
    debt_dai: int  #: dai drawn
    ratio: Decimal  #: collateral value over debt at the OSM price
    via: str  #: cdp-manager or vat (frobbed directly)


@dataclass
class MakerHistory:
    vaults: list[Vault] = field(default_factory=list)
    barked: list[dict[str, Any]] = field(default_factory=list)  #: (ilk, urn) the keeper barked
    taken: int = 0  #: auctions the keeper bought from
    pokes: int = 0  #: OSM pokes
    drips: int = 0  #: Jug drips
    timestamps: dict[str, int] = field(default_factory=dict)  #: when each phase ran


class MakerDevnet:
    """The stand-ins on a devnet chain, and what the devnet does with them."""

    def __init__(self, builder: BlockBuilder, deployment: MakerDeployment, fund: Funder) -> None:
        self.builder = builder
        self.rpc = builder.rpc
        self.d = deployment
        self.fund = fund
        contracts = standin_contracts("maker")
        self.abi = {name: Abi(contracts[name].abi) for name in contracts}
        self.token = Abi(aave_artifact("MintableERC20").abi)
        self.history = MakerHistory()

    # -- reads ---------------------------------------------------------------------------------------------
    def _read(self, contract: str, address: str, fn: str, *args: Any) -> tuple[Any, ...]:
        abi = self.abi[contract]
        return abi.decode(fn, self.rpc.call(*eth_call(address, abi, fn, *args)))

    def rate(self, ilk: str) -> int:
        return int(self._read("Vat", self.d.vat, "ilks", bytes32(ilk))[1])

    def spot(self, ilk: str) -> int:
        return int(self._read("Vat", self.d.vat, "ilks", bytes32(ilk))[2])

    def _call(self, sender: str, contract: str, to: str, fn: str, *args: Any, required: bool = True) -> None:
        self.builder.call(sender, self.abi[contract], to, fn, *args, required=required)

    # -- vaults --------------------------------------------------------------------------------------------
    def open_vaults(self, plans: list[VaultPlan]) -> list[Vault]:
        """Opens every planned vault in two rounds of blocks. Through the CDP manager it is DssProxyActions' path
        without the proxy (open; join to the UrnHandler; frob; move the dai out); directly, the wallet is its own
        urn: join the gem to itself and frob the Vat (no NewCdp event)."""
        rates = {name: self.rate(name) for name in self.d.ilks}
        amounts = []
        managed = [p for p in plans if p.via == "cdp-manager"]
        for plan in plans:
            ilk = self.d.ilks[plan.ilk]
            value_dai = Decimal(plan.debt_dai) * plan.ratio
            amount = int(value_dai * WAD / ilk.price * 10**ilk.decimals)
            amounts.append((amount, amount * 10 ** (18 - ilk.decimals), plan.debt_dai * WAD * RAY // rates[plan.ilk]))
            self.fund(self.builder, ilk.symbol, ilk.gem, plan.wallet, amount)
            self.builder.call(plan.wallet, self.token, ilk.gem, "approve", ilk.join, amount)
            if plan.via == "cdp-manager":
                self._call(plan.wallet, "DssCdpManager", self.d.cdp_manager, "open", bytes32(plan.ilk), plan.wallet)
        self.builder.mine(12)
        # Ids in the order the opens were sent (the node mines first in, first out).
        last = int(self._read("DssCdpManager", self.d.cdp_manager, "cdpi")[0])
        ids = list(range(last - len(managed) + 1, last + 1))
        manager = self.abi["DssCdpManager"]
        raw = self.rpc.batch([eth_call(self.d.cdp_manager, manager, "urns", i) for i in ids])
        handlers = iter(zip(ids, (str(manager.decode("urns", r)[0]).lower() for r in raw), strict=True))
        vaults = []
        for plan, (amount, ink, dart) in zip(plans, amounts, strict=True):
            ilk = self.d.ilks[plan.ilk]
            if plan.via == "cdp-manager":
                cdp, urn = next(handlers)
                self._call(plan.wallet, "GemJoin", ilk.join, "join", urn, amount)
                self._call(plan.wallet, "DssCdpManager", self.d.cdp_manager, "frob", cdp, ink, dart)
                rad = dart * rates[plan.ilk]
                self._call(plan.wallet, "DssCdpManager", self.d.cdp_manager, "move", cdp, plan.wallet, rad)
                vaults.append(Vault(plan.ilk, urn, plan.wallet.lower(), cdp, "cdp-manager"))
            else:
                wallet = plan.wallet
                self._call(wallet, "GemJoin", ilk.join, "join", wallet, amount)
                self._call(wallet, "Vat", self.d.vat, "frob", bytes32(plan.ilk), wallet, wallet, wallet, ink, dart)
                vaults.append(Vault(plan.ilk, wallet.lower(), wallet.lower(), None, "vat"))
        self.builder.mine(12)
        self.history.vaults.extend(vaults)
        return vaults

    def open_at_limit(self, wallet: str, ilk_name: str, ink_tokens: int) -> Vault:
        """A direct urn drawn to the last wei the Vat allows: art = floor(ink * spot / rate)."""
        ilk = self.d.ilks[ilk_name]
        amount = ink_tokens * 10**ilk.decimals
        ink = amount * 10 ** (18 - ilk.decimals)
        dart = ink * self.spot(ilk_name) // self.rate(ilk_name)
        self.fund(self.builder, ilk.symbol, ilk.gem, wallet, amount)
        self.builder.call(wallet, self.token, ilk.gem, "approve", ilk.join, amount)
        self._call(wallet, "GemJoin", ilk.join, "join", wallet, amount)
        self._call(wallet, "Vat", self.d.vat, "frob", bytes32(ilk_name), wallet, wallet, wallet, ink, dart)
        vault = Vault(ilk_name, wallet.lower(), wallet.lower(), None, "vat")
        self.history.vaults.append(vault)
        return vault

    def quit_to_owner(self, vault: Vault) -> Vault:
        """The owner moves a manager vault into its own urn (DssCdpManager.quit: a Vat fork)."""
        self._call(vault.owner, "Vat", self.d.vat, "hope", self.d.cdp_manager)
        self._call(vault.owner, "DssCdpManager", self.d.cdp_manager, "quit", vault.cdp_id, vault.owner)
        moved = Vault(vault.ilk, vault.owner, vault.owner, None, "fork")
        self.history.vaults.remove(vault)
        self.history.vaults.append(moved)
        return moved

    def give(self, vault: Vault, new_owner: str) -> None:
        """The owner hands a manager vault to someone else (no event: the owner is read at the snapshot)."""
        self._call(vault.owner, "DssCdpManager", self.d.cdp_manager, "give", vault.cdp_id, new_owner)
        vault.owner = new_owner.lower()

    # -- rates and prices ----------------------------------------------------------------------------------
    def drip_all(self) -> None:
        for name in self.d.ilks:
            self._call(DEPLOYER, "Jug", self.d.jug, "drip", bytes32(name))
            self.history.drips += 1
        self.builder.mine(0)

    def queue_price(self, ilk_name: str, price: int) -> None:
        """The source's new value (wad); the OSM takes it as `nxt` at its next poke."""
        ilk = self.d.ilks[ilk_name]
        self._call(DEPLOYER, "PriceSource", ilk.source, "poke", price.to_bytes(32, "big"))
        ilk.price = price

    def poke(self, spotter: bool = True) -> None:
        """One OSM round, an hop after the last: every OSM makes its queued value current (and queues the
        source's), then the Spotter brings the current values into the Vat."""
        self.builder.mine(HOP)
        for ilk in self.d.ilks.values():
            self._call(DEPLOYER, "OSM", ilk.pip, "poke")
            self.history.pokes += 1
        self.builder.mine(0)
        if spotter:
            for name in self.d.ilks:
                self._call(DEPLOYER, "Spotter", self.d.spot, "poke", bytes32(name))
            self.builder.mine(0)

    def set_prices(self, prices: dict[str, int]) -> None:
        """Source values that become current after two OSM rounds (an hour apart), spot updated each time."""
        for name, price in prices.items():
            self.queue_price(name, price)
        self.poke()
        self.poke()

    # -- liquidations --------------------------------------------------------------------------------------
    def keeper_vault(self, debt_dai: int) -> None:
        """The keeper's own ETH-A vault (a direct urn at 4x collateral) gives it Vat dai for auctions."""
        self.open_vaults([VaultPlan(MAKER_KEEPER, "ETH-A", debt_dai, Decimal(4), "vat")])
        for ilk in self.d.ilks.values():
            self._call(MAKER_KEEPER, "Vat", self.d.vat, "hope", ilk.clip)
        self.builder.mine(0)

    def unsafe(self) -> list[Vault]:
        """Vaults Dog.bark would take now: spot > 0 and ink * spot < art * rate."""
        vat = self.abi["Vat"]
        ilks = {
            n: vat.decode("ilks", self.rpc.call(*eth_call(self.d.vat, vat, "ilks", bytes32(n)))) for n in self.d.ilks
        }
        calls = [eth_call(self.d.vat, vat, "urns", bytes32(v.ilk), v.urn) for v in self.history.vaults]
        out = []
        for v, raw in zip(self.history.vaults, self.rpc.batch(calls), strict=True):
            ink, art = vat.decode("urns", raw)
            _, rate, spot, _, _ = ilks[v.ilk]
            if spot > 0 and ink * spot < art * rate:
                out.append(v)
        return out

    def bark(self, vaults: list[Vault]) -> None:
        """The keeper barks each urn; one the Dog refuses (its ilk's auction limit reached) stays as it is."""
        for v in vaults:
            self._call(MAKER_KEEPER, "Dog", self.d.dog, "bark", bytes32(v.ilk), v.urn, MAKER_KEEPER, required=False)
        for v, receipt in zip(vaults, self.builder.mine(0), strict=True):
            if receipt.ok:
                self.history.barked.append({"ilk": v.ilk, "urn": v.urn})

    def take(self, ilk_name: str, after_s: int) -> None:
        """The keeper buys the whole lot of the ilk's first auction `after_s` seconds into it, at the curve's price."""
        clip = self.d.ilks[ilk_name].clip
        active = self._read("Clipper", clip, "list")[0]
        if not active:
            return
        self.builder.mine(after_s)
        sale = self._read("Clipper", clip, "sales", active[0])
        self._call(MAKER_KEEPER, "Clipper", clip, "take", active[0], sale[2], 10**40, MAKER_KEEPER, b"")
        self.builder.mine(0)
        self.history.taken += 1


def _deploy(builder: BlockBuilder, contract: CompiledContract, *args: Any, label: str) -> str:
    return builder.deploy(contract, *args, label=f"{label} (stand-in)").lower()


def deploy_maker(
    builder: BlockBuilder, tokens: dict[str, str], code: Mapping[str, CompiledContract] | None = None
) -> MakerDeployment:
    """Every stand-in, wired as mainnet's are (wards, files, whitelists), with ILKS' parameters; each ilk's OSM
    holds its starting price as current and next, and the ChainLog names everything under mainnet's keys. `code`:
    contracts to deploy instead, by the stand-ins' names (tests/vectors/record_maker.py deploys makerdao/dss's own Vat,
    Spotter, Jug, Dog, Clipper and LinearDecrease; their constructors take what the stand-ins' do)."""
    c = dict(standin_contracts("maker")) | dict(code or {})
    abi = {name: Abi(c[name].abi) for name in c}
    vat = _deploy(builder, c["Vat"], label="Vat")
    dai = _deploy(builder, c["Dai"], label="Dai")
    d = MakerDeployment(
        chainlog=_deploy(builder, c["ChainLog"], label="ChainLog"),
        vat=vat,
        spot=_deploy(builder, c["Spotter"], vat, label="Spotter"),
        jug=_deploy(builder, c["Jug"], vat, label="Jug"),
        dog=_deploy(builder, c["Dog"], vat, label="Dog"),
        vow=_deploy(builder, c["Vow"], vat, label="Vow"),
        dai=dai,
        dai_join=_deploy(builder, c["DaiJoin"], vat, dai, label="DaiJoin"),
        cdp_manager=_deploy(builder, c["DssCdpManager"], vat, label="DssCdpManager"),
        ilk_registry="",
    )
    d.ilk_registry = _deploy(builder, c["IlkRegistry"], vat, d.dog, d.spot, label="IlkRegistry")

    def call(to: str, contract: str, fn: str, *args: Any) -> None:
        if "(" in fn:
            builder.send(DEPLOYER, to, overload_calldata(fn, *args), f"{contract}.{fn}")
        else:
            builder.call(DEPLOYER, abi[contract], to, fn, *args)

    for ward in (d.spot, d.jug, d.dog, d.dai_join):
        call(vat, "Vat", "rely", ward)
    call(dai, "Dai", "rely", d.dai_join)
    call(d.vow, "Vow", "rely", d.dog)
    call(vat, "Vat", "file(bytes32,uint256)", bytes32("Line"), GLOBAL_LINE_DAI * RAD)
    call(d.jug, "Jug", "file(bytes32,address)", bytes32("vow"), d.vow)
    call(d.dog, "Dog", "file(bytes32,address)", bytes32("vow"), d.vow)
    call(d.dog, "Dog", "file(bytes32,uint256)", bytes32("Hole"), GLOBAL_HOLE_DAI * RAD)
    builder.mine()
    for spec in ILKS:
        ilk = bytes32(spec.name)
        gem = tokens[spec.gem].lower()
        join_contract = c["GemJoin5"] if spec.decimals < 18 else c["GemJoin"]
        source = _deploy(builder, c["PriceSource"], label=f"price source {spec.gem}")
        pip = _deploy(builder, c["OSM"], source, label=f"OSM {spec.gem}")
        calc = _deploy(builder, c["LinearDecrease"], label=f"LinearDecrease {spec.name}")
        item = MakerIlk(
            spec.name,
            spec.gem,
            spec.decimals,
            gem,
            join=_deploy(builder, join_contract, vat, ilk, gem, label=f"join {spec.name}"),
            pip=pip,
            source=source,
            clip=_deploy(builder, c["Clipper"], vat, d.spot, d.dog, ilk, label=f"Clipper {spec.name}"),
            calc=calc,
            price=spec.price_usd * WAD,
        )
        d.ilks[spec.name] = item
        call(vat, "Vat", "rely", item.join)
        call(vat, "Vat", "init", ilk)
        call(vat, "Vat", "file(bytes32,bytes32,uint256)", ilk, bytes32("line"), spec.line_dai * RAD)
        call(vat, "Vat", "file(bytes32,bytes32,uint256)", ilk, bytes32("dust"), spec.dust_dai * RAD)
        call(d.jug, "Jug", "init", ilk)
        call(d.jug, "Jug", "file(bytes32,bytes32,uint256)", ilk, bytes32("duty"), duty(spec.fee_per_year))
        call(d.spot, "Spotter", "file(bytes32,bytes32,address)", ilk, bytes32("pip"), pip)
        call(d.spot, "Spotter", "file(bytes32,bytes32,uint256)", ilk, bytes32("mat"), int(spec.mat * RAY))
        call(pip, "OSM", "kiss(address)", d.spot)
        call(pip, "OSM", "kiss(address)", item.clip)
        call(source, "PriceSource", "poke", item.price.to_bytes(32, "big"))
        call(item.clip, "Clipper", "rely", d.dog)
        call(vat, "Vat", "rely", item.clip)  # kick sucks the keeper's incentive from the vow (none filed here)
        call(item.clip, "Clipper", "file(bytes32,address)", bytes32("vow"), d.vow)
        call(calc, "LinearDecrease", "file(bytes32,uint256)", bytes32("tau"), CLIP_TAU)
        call(item.clip, "Clipper", "file(bytes32,address)", bytes32("calc"), calc)
        call(item.clip, "Clipper", "file(bytes32,uint256)", bytes32("buf"), int(CLIP_BUF * RAY))
        call(item.clip, "Clipper", "file(bytes32,uint256)", bytes32("tail"), CLIP_TAIL)
        call(item.clip, "Clipper", "file(bytes32,uint256)", bytes32("cusp"), int(CLIP_CUSP * RAY))
        call(d.dog, "Dog", "rely", item.clip)
        call(d.dog, "Dog", "file(bytes32,bytes32,address)", ilk, bytes32("clip"), item.clip)
        call(d.dog, "Dog", "file(bytes32,bytes32,uint256)", ilk, bytes32("chop"), int(spec.chop * WAD))
        call(d.dog, "Dog", "file(bytes32,bytes32,uint256)", ilk, bytes32("hole"), spec.hole_dai * RAD)
        builder.mine()
        call(item.clip, "Clipper", "upchost")
        call(d.ilk_registry, "IlkRegistry", "add", item.join)
        builder.mine()
    # Two OSM rounds an hour apart make each starting price current (and next), then the Spotter sets spot.
    for _ in range(2):
        builder.mine(HOP)
        for item in d.ilks.values():
            call(item.pip, "OSM", "poke")
        builder.mine()
    for spec in ILKS:
        call(d.spot, "Spotter", "poke", bytes32(spec.name))
    keys = {
        "MCD_VAT": vat,
        "MCD_SPOT": d.spot,
        "MCD_JUG": d.jug,
        "MCD_DOG": d.dog,
        "MCD_VOW": d.vow,
        "MCD_DAI": dai,
        "MCD_JOIN_DAI": d.dai_join,
        "CDP_MANAGER": d.cdp_manager,
        "ILK_REGISTRY": d.ilk_registry,
    }
    for item in d.ilks.values():
        key = item.name.replace("-", "_")
        keys |= {f"MCD_JOIN_{key}": item.join, f"MCD_CLIP_{key}": item.clip, f"PIP_{item.symbol.upper()}": item.pip}
    for key, address in keys.items():
        call(d.chainlog, "ChainLog", "setAddress", bytes32(key), address)
    builder.mine()
    return d


def deploy_gems(builder: BlockBuilder) -> dict[str, str]:
    """Open-mint test tokens (Aave's MintableERC20) for the ilks' gems, when the devnet brings none."""
    token = aave_artifact("MintableERC20")
    return {s.gem: builder.deploy(token, f"Devnet {s.gem}", s.gem, s.decimals, label=f"token {s.gem}") for s in ILKS}


def mint(builder: BlockBuilder, symbol: str, token: str, wallet: str, amount: int) -> None:
    """Funds a wallet by MintableERC20.mint(amount) from the wallet itself."""
    builder.call(wallet, Abi(aave_artifact("MintableERC20").abi), token, "mint", amount)


def _debt(rng: random.Random) -> int:
    """Vault debt in dai: Pareto (alpha 1.16) from 10,000, capped at 2 million, rounded to 100."""
    return min(2_000_000, int(10_000 / (1 - rng.random()) ** (1 / 1.16)) // 100 * 100)


def populate_maker(devnet: MakerDevnet, seed: int, vaults_per_ilk: int = 9, fee_days: int = 90) -> None:
    """The vaults' life: half opened through the CDP manager, half frobbed directly on the Vat, at collateral
    ratios from 152 % to 400 %; one manager vault moved out with quit (a fork) and one given away; `fee_days` of
    fees dripped; a crash through the OSMs; the keeper barks every other unsafe urn and buys one lot; then an urn
    drawn to the Vat's last wei is left a hair unsafe by a one-wei price move, a lower next price is queued, and
    a last urn is drawn to the limit at the current rate (unsafe after the next drip)."""
    rng = random.Random(seed)
    b = devnet.builder
    devnet.history.timestamps["open"] = b.timestamp
    plans = [
        VaultPlan(
            _address(f"maker-vault-{seed}-{name}-{k}"),
            name,
            _debt(rng),
            Decimal(OPEN_RATIOS[(k + ilk_index) % len(OPEN_RATIOS)]),
            "cdp-manager" if k % 2 == 0 else "vat",
        )
        for ilk_index, name in enumerate(devnet.d.ilks)
        for k in range(vaults_per_ilk)
    ]
    opened = devnet.open_vaults(plans)
    devnet.keeper_vault(3_000_000 + 100_000 * len(plans))
    manager_vaults = [v for v in opened if v.via == "cdp-manager"]
    devnet.give(manager_vaults[1], _address(f"maker-new-owner-{seed}"))
    b.mine(60)
    devnet.quit_to_owner(manager_vaults[2])
    b.mine(0)

    b.mine(fee_days * 24 * 3600)  # months of stability fees (a quarter by default), then collected
    devnet.history.timestamps["drip"] = b.timestamp
    devnet.drip_all()

    devnet.history.timestamps["crash"] = b.timestamp
    devnet.set_prices({n: int(i.price * CRASH[n]) for n, i in devnet.d.ilks.items()})
    unsafe = devnet.unsafe()
    devnet.bark(unsafe[::2])
    devnet.take(unsafe[0].ilk, after_s=CLIP_TAU // 3)

    # The last wei: an urn at the limit, then the price one wei lower (through both OSM rounds) and a lower
    # next price queued behind it.
    devnet.history.timestamps["edge"] = b.timestamp
    eth = devnet.d.ilks["ETH-A"]
    devnet.open_at_limit(_address(f"maker-edge-{seed}"), "ETH-A", 37)
    b.mine(0)
    devnet.queue_price("ETH-A", eth.price - 1)
    devnet.poke(spotter=False)
    for name, factor in NEXT.items():
        devnet.queue_price(name, int(devnet.d.ilks[name].price * factor))
    devnet.poke()
    # And one drawn to the last wei at today's rate: safe now, unsafe once the fees since the last drip are in.
    devnet.open_at_limit(_address(f"maker-limit-{seed}"), "WSTETH-A", 40)
    b.mine(0)
    devnet.history.timestamps["end"] = b.timestamp


def maker_manifest(devnet: MakerDevnet, deployed_block: int) -> dict[str, Any]:
    """The devnet manifest's Maker section."""
    d = devnet.d
    return {
        "stand_in": True,
        "label": MAKER_LABEL,
        "deployed_block": deployed_block,
        **{k: v for k, v in asdict(d).items() if k != "ilks"},
        "ilks": {name: asdict(i) for name, i in d.ilks.items()},
        "keeper": MAKER_KEEPER,
        "vaults": [asdict(v) for v in devnet.history.vaults],
        "history": {
            "barked": devnet.history.barked,
            "auctions_taken": devnet.history.taken,
            "osm_pokes": devnet.history.pokes,
            "drips": devnet.history.drips,
            "timestamps": devnet.history.timestamps,
        },
    }


def build_maker(
    builder: BlockBuilder,
    *,
    tokens: dict[str, str] | None = None,
    fund: Funder = mint,
    seed: int = 1,
    vaults_per_ilk: int = 9,
    fee_days: int = 90,
    code: Mapping[str, CompiledContract] | None = None,
) -> dict[str, Any]:
    """Deploys the Maker stand-ins (over `tokens` by symbol, else fresh test tokens; `code`: deploy_maker), runs
    `populate_maker` and returns the manifest section (`"stand_in": true` and its label)."""
    gems = tokens if tokens is not None else deploy_gems(builder)
    deployment = deploy_maker(builder, gems, code)
    deployed_block = int(builder.rpc.call("eth_blockNumber"), 16)
    devnet = MakerDevnet(builder, deployment, fund)
    populate_maker(devnet, seed, vaults_per_ilk, fee_days)
    return maker_manifest(devnet, deployed_block)


def reset_stalled_auction(builder: BlockBuilder, section: dict[str, Any]) -> int | None:
    """The keeper resets (Clipper.redo) the stalled auction with the largest tab left, if any: the devnet's last act
    (the other protocols' build runs days past the barks, so every auction has passed its tail), so that the
    snapshot holds a running auction, at its new start price, beside the stalled ones. Returns its id."""
    clipper = Abi(standin_contracts("maker")["Clipper"].abi)
    found: tuple[int, str, int] | None = None
    for ilk in section["ilks"].values():
        clip = ilk["clip"]
        for auction in clipper.decode("list", builder.rpc.call(*eth_call(clip, clipper, "list")))[0]:
            status = clipper.decode("getStatus", builder.rpc.call(*eth_call(clip, clipper, "getStatus", auction)))
            needs_redo, tab = bool(status[0]), int(status[3])
            if needs_redo and (found is None or tab > found[0]):
                found = (tab, clip, int(auction))
    if found is None:
        return None
    _, clip, auction = found
    builder.call(MAKER_KEEPER, clipper, clip, "redo", auction, MAKER_KEEPER)
    builder.mine(60)
    return auction
