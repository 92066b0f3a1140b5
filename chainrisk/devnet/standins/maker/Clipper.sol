// SPDX-License-Identifier: AGPL-3.0-or-later
pragma solidity 0.8.19;

interface ClipVatLike {
    function move(address, address, uint256) external;
    function suck(address, address, uint256) external;
    function flux(bytes32, address, address, uint256) external;
    function ilks(bytes32) external view returns (uint256, uint256, uint256, uint256, uint256);
}

interface ClipSpotterLike {
    function par() external view returns (uint256);
    function ilks(bytes32) external view returns (address pip, uint256 mat);
}

interface ClipPipLike {
    function peek() external returns (bytes32, bool);
}

interface ClipDogLike {
    function chop(bytes32) external view returns (uint256);
    function digs(bytes32, uint256) external;
}

interface AbacusLike {
    function price(uint256 top, uint256 dur) external view returns (uint256);
}

/// @notice The wards of the price curves below, as each of dss's abaci.sol writes them out: the deployer is a ward,
/// and only a ward files the curve's settings (its errors named after the curve: "LinearDecrease/not-authorized").
abstract contract AbacusWards {
    mapping(address => uint256) public wards;

    event Rely(address indexed usr);
    event Deny(address indexed usr);
    event File(bytes32 indexed what, uint256 data);

    constructor() {
        wards[msg.sender] = 1;
        emit Rely(msg.sender);
    }

    modifier auth() {
        require(wards[msg.sender] == 1, string.concat(curve(), "/not-authorized"));
        _;
    }

    function rely(address usr) external auth {
        wards[usr] = 1;
        emit Rely(usr);
    }

    function deny(address usr) external auth {
        wards[usr] = 0;
        emit Deny(usr);
    }

    /// @notice The curve's name, which its errors begin with.
    function curve() internal pure virtual returns (string memory);
}

/// @title LinearDecrease (stand-in)
/// @notice Stand-in for Maker's LinearDecrease price curve: chainrisk's own Solidity written from the documented
/// maths of makerdao/dss src/abaci.sol, not Maker's bytecode: price = top * (tau - dur) / tau, 0 from tau on.
contract LinearDecrease is AbacusWards {
    uint256 public tau; // seconds from the start price to zero
    uint256 internal constant RAY = 10 ** 27;

    function curve() internal pure override returns (string memory) {
        return "LinearDecrease";
    }

    function file(bytes32 what, uint256 data) external auth {
        require(what == "tau", "LinearDecrease/file-unrecognized-param");
        tau = data;
        emit File(what, data);
    }

    function price(uint256 top, uint256 dur) external view returns (uint256) {
        if (dur >= tau) return 0;
        return top * ((tau - dur) * RAY / tau) / RAY;
    }
}

/// @title StairstepExponentialDecrease (stand-in)
/// @notice Stand-in for Maker's StairstepExponentialDecrease price curve: chainrisk's own Solidity written from the
/// documented maths of makerdao/dss src/abaci.sol, not Maker's bytecode: price = rmul(top, rpow(cut, dur / step, RAY)),
/// rpow by repeated squaring with each product rounded half up, as dss does it.
contract StairstepExponentialDecrease is AbacusWards {
    uint256 public cut; // per-step multiplicative factor [ray]
    uint256 public step; // seconds between price drops
    uint256 internal constant RAY = 10 ** 27;

    function curve() internal pure override returns (string memory) {
        return "StairstepExponentialDecrease";
    }

    function file(bytes32 what, uint256 data) external auth {
        if (what == "cut") {
            require(data <= RAY, "StairstepExponentialDecrease/cut-gt-RAY");
            cut = data;
        } else if (what == "step") {
            step = data;
        } else {
            revert("StairstepExponentialDecrease/file-unrecognized-param");
        }
        emit File(what, data);
    }

    function rpow(uint256 x, uint256 n, uint256 b) internal pure returns (uint256 z) {
        if (n == 0) return b;
        if (x == 0) return 0;
        z = n % 2 == 0 ? b : x;
        uint256 half = b / 2;
        for (n /= 2; n > 0; n /= 2) {
            x = (x * x + half) / b;
            if (n % 2 == 1) z = (z * x + half) / b;
        }
    }

    function price(uint256 top, uint256 dur) external view returns (uint256) {
        return top * rpow(cut, dur / step, RAY) / RAY;
    }
}

/// @title Clipper (stand-in, minimal)
/// @notice Stand-in for Maker's Clipper, the Dutch auction the Dog kicks: chainrisk's own Solidity written from the
/// public interface and documented maths of makerdao/dss src/clip.sol, not Maker's bytecode. Minimal: `kick`
/// starts at top = feed price * buf, the price falls along `calc`, `take` sells collateral at the current price
/// (owe = slice * price, the tab capped, the chost rule for partial purchases), sends the dai to the vow, returns
/// leftover collateral to the urn and lets the Dog know (`digs`). The keeper's incentive as clip.sol pays it at
/// `kick`: coin = tip + wmul(tab, chip), sucked from the vow to `kpr` (none unless `tip` or `chip` is filed). An
/// auction needs a reset once `tail` seconds have passed or its price has fallen below `cusp` of its top (`status`):
/// `take` then refuses and `redo` restarts it at the feed's price again (paying the same incentive where the tab and
/// the lot's worth reach `chost`); `getStatus` answers (needsRedo, price, lot, tab) and `yank` cancels an auction
/// for its ward, as clip.sol does. No flash-loan callbacks, no circuit breaker (`stopped`).
contract Clipper {
    mapping(address => uint256) public wards;

    bytes32 public immutable ilk;
    address public immutable vat;
    address public dog;
    address public vow;
    address public spotter;
    address public calc;

    uint256 public buf; // multiplicative factor on the starting price [ray]
    uint256 public tail; // seconds after which an auction needs a reset
    uint256 public cusp; // share of top under which an auction's price needs a reset [ray]
    uint256 public chost; // ilk dust times chop [rad]
    uint64 public chip; // share of the tab sucked from the vow to incentivize keepers [wad]
    uint192 public tip; // flat fee sucked from the vow to incentivize keepers [rad]
    uint256 public kicks;
    uint256[] public active;

    struct Sale {
        uint256 pos; // index in active
        uint256 tab; // dai to raise [rad]
        uint256 lot; // collateral to sell [wad]
        address usr; // liquidated urn
        uint96 tic; // auction start
        uint256 top; // starting price [ray]
    }

    mapping(uint256 => Sale) public sales;

    uint256 internal constant RAY = 10 ** 27;
    uint256 internal constant WAD = 10 ** 18;

    event Kick(
        uint256 indexed id, uint256 top, uint256 tab, uint256 lot, address indexed usr, address indexed kpr, uint256 coin
    );
    event Take(uint256 indexed id, uint256 max, uint256 price, uint256 owe, uint256 tab, uint256 lot, address indexed usr);
    event Redo(
        uint256 indexed id, uint256 top, uint256 tab, uint256 lot, address indexed usr, address indexed kpr, uint256 coin
    );
    event Yank(uint256 id);
    // dss src/clip.sol's File events, one per file.
    event File(bytes32 indexed what, uint256 data);
    event File(bytes32 indexed what, address data);

    modifier auth() {
        require(wards[msg.sender] == 1, "Clipper/not-authorized");
        _;
    }

    constructor(address vat_, address spotter_, address dog_, bytes32 ilk_) {
        vat = vat_;
        spotter = spotter_;
        dog = dog_;
        ilk = ilk_;
        buf = RAY;
        wards[msg.sender] = 1;
    }

    function rely(address usr) external auth {
        wards[usr] = 1;
    }

    function file(bytes32 what, uint256 data) external auth {
        if (what == "buf") buf = data;
        else if (what == "tail") tail = data;
        else if (what == "cusp") cusp = data;
        else if (what == "tip") tip = uint192(data);
        else if (what == "chip") chip = uint64(data);
        else revert("Clipper/file-unrecognized-param");
        emit File(what, data);
    }

    function file(bytes32 what, address data) external auth {
        if (what == "vow") vow = data;
        else if (what == "calc") calc = data;
        else revert("Clipper/file-unrecognized-param");
        emit File(what, data);
    }

    function kick(uint256 tab, uint256 lot, address usr, address kpr) external auth returns (uint256 id) {
        require(tab > 0 && lot > 0 && usr != address(0), "Clipper/bad-kick");
        id = ++kicks;
        active.push(id);
        Sale storage sale = sales[id];
        sale.pos = active.length - 1;
        sale.tab = tab;
        sale.lot = lot;
        sale.usr = usr;
        sale.tic = uint96(block.timestamp);
        sale.top = _feedPrice() * buf / RAY;
        require(sale.top > 0, "Clipper/zero-top-price");
        uint256 coin;
        if (tip > 0 || chip > 0) {
            coin = tip + tab * chip / WAD;
            ClipVatLike(vat).suck(vow, kpr, coin);
        }
        emit Kick(id, sale.top, tab, lot, usr, kpr, coin);
    }

    function _feedPrice() internal returns (uint256) {
        (address pip,) = ClipSpotterLike(spotter).ilks(ilk);
        (bytes32 val, bool has) = ClipPipLike(pip).peek();
        require(has, "Clipper/invalid-price");
        return uint256(val) * 10 ** 9 * RAY / ClipSpotterLike(spotter).par();
    }

    function _status(uint96 tic, uint256 top) internal view returns (bool done, uint256 price) {
        price = AbacusLike(calc).price(top, block.timestamp - tic);
        done = block.timestamp - tic > tail || price * RAY / top < cusp;
    }

    function getStatus(uint256 id) external view returns (bool needsRedo, uint256 price, uint256 lot, uint256 tab) {
        Sale memory sale = sales[id];
        bool done;
        (done, price) = _status(sale.tic, sale.top);
        needsRedo = sale.usr != address(0) && done;
        lot = sale.lot;
        tab = sale.tab;
    }

    function redo(uint256 id, address kpr) external {
        Sale storage sale = sales[id];
        require(sale.usr != address(0), "Clipper/not-running-auction");
        (bool done,) = _status(sale.tic, sale.top);
        require(done, "Clipper/cannot-reset");
        sale.tic = uint96(block.timestamp);
        uint256 feedPrice = _feedPrice();
        sale.top = feedPrice * buf / RAY;
        require(sale.top > 0, "Clipper/zero-top-price");
        uint256 coin;
        if ((tip > 0 || chip > 0) && sale.tab >= chost && sale.lot * feedPrice >= chost) {
            coin = tip + sale.tab * chip / WAD;
            ClipVatLike(vat).suck(vow, kpr, coin);
        }
        emit Redo(id, sale.top, sale.tab, sale.lot, sale.usr, kpr, coin);
    }

    function yank(uint256 id) external auth {
        require(sales[id].usr != address(0), "Clipper/not-running-auction");
        ClipDogLike(dog).digs(ilk, sales[id].tab);
        ClipVatLike(vat).flux(ilk, address(this), msg.sender, sales[id].lot);
        _remove(id);
        emit Yank(id);
    }

    function take(uint256 id, uint256 amt, uint256 max, address who, bytes calldata) external {
        Sale memory sale = sales[id];
        require(sale.usr != address(0), "Clipper/not-running-auction");
        (bool done, uint256 price) = _status(sale.tic, sale.top);
        require(!done, "Clipper/needs-reset");
        require(max >= price, "Clipper/too-expensive");

        uint256 slice = sale.lot < amt ? sale.lot : amt;
        uint256 owe = slice * price;
        if (owe > sale.tab) {
            owe = sale.tab;
            slice = owe / price;
        } else if (owe < sale.tab && slice < sale.lot) {
            if (sale.tab - owe < chost) {
                require(sale.tab > chost, "Clipper/no-partial-purchase");
                owe = sale.tab - chost;
                slice = owe / price;
            }
        }
        uint256 tab = sale.tab - owe;
        uint256 lot = sale.lot - slice;
        ClipVatLike(vat).flux(ilk, address(this), who, slice);
        ClipVatLike(vat).move(msg.sender, vow, owe);
        ClipDogLike(dog).digs(ilk, lot == 0 ? tab + owe : owe);

        if (lot == 0) {
            _remove(id);
        } else if (tab == 0) {
            ClipVatLike(vat).flux(ilk, address(this), sale.usr, lot);
            _remove(id);
        } else {
            sales[id].tab = tab;
            sales[id].lot = lot;
        }
        emit Take(id, max, price, owe, tab, lot, sale.usr);
    }

    function _remove(uint256 id) internal {
        uint256 last = active[active.length - 1];
        if (id != last) {
            uint256 index = sales[id].pos;
            active[index] = last;
            sales[last].pos = index;
        }
        active.pop();
        delete sales[id];
    }

    function count() external view returns (uint256) {
        return active.length;
    }

    function list() external view returns (uint256[] memory) {
        return active;
    }

    function upchost() external {
        (,,,, uint256 dust) = ClipVatLike(vat).ilks(ilk);
        chost = dust * ClipDogLike(dog).chop(ilk) / WAD;
    }
}

/// @title Vow (stand-in, minimal)
/// @notice Stand-in for Maker's Vow, reduced to what liquidations touch: chainrisk's own Solidity written from the
/// public interface of makerdao/dss src/vow.sol, not Maker's bytecode. `fess` queues the debt a bark moved to the
/// system (sin[now] += tab, Sin += tab); auction proceeds arrive as its Vat dai balance. No flap/flop auctions.
contract Vow {
    mapping(address => uint256) public wards;
    address public vat;
    mapping(uint256 => uint256) public sin; // debt queue [rad]
    uint256 public Sin; // queued debt [rad]

    constructor(address vat_) {
        wards[msg.sender] = 1;
        vat = vat_;
    }

    function rely(address usr) external {
        require(wards[msg.sender] == 1, "Vow/not-authorized");
        wards[usr] = 1;
    }

    function fess(uint256 tab) external {
        require(wards[msg.sender] == 1, "Vow/not-authorized");
        sin[block.timestamp] += tab;
        Sin += tab;
    }
}
