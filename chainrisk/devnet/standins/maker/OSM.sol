// SPDX-License-Identifier: AGPL-3.0-or-later
pragma solidity 0.8.19;

interface OsmSourceLike {
    function peek() external view returns (bytes32, bool);
}

/// @title OSM (stand-in)
/// @notice Stand-in for Maker's Oracle Security Module: chainrisk's own Solidity written from the public interface
/// of makerdao/osm src/osm.sol, not Maker's bytecode, with its published storage layout (wards 0, stopped 1,
/// src|hop|zzz packed in 2, cur 3, nxt 4, bud 5). `poke`, once `hop` seconds have passed since `zzz`, makes the
/// queued value current and queues the source's; `peek`/`read` answer the current value, `peep` the next one, to
/// whitelisted callers only (`bud`), as on mainnet.
contract OSM {
    mapping(address => uint256) public wards;
    uint256 public stopped;
    address public src;
    uint16 public hop = 3600;
    uint64 public zzz;

    struct Feed {
        uint128 val;
        uint128 has;
    }

    Feed internal cur;
    Feed internal nxt;
    mapping(address => uint256) public bud;

    event LogValue(bytes32 val);

    modifier auth() {
        require(wards[msg.sender] == 1, "OSM/not-authorized");
        _;
    }

    modifier toll() {
        require(bud[msg.sender] == 1, "OSM/contract-not-whitelisted");
        _;
    }

    constructor(address src_) {
        wards[msg.sender] = 1;
        src = src_;
    }

    function step(uint16 ts) external auth {
        require(ts > 0, "OSM/ts-is-zero");
        hop = ts;
    }

    function kiss(address a) external auth {
        require(a != address(0), "OSM/no-contract-0");
        bud[a] = 1;
    }

    function pass() public view returns (bool) {
        return block.timestamp >= zzz + hop;
    }

    function poke() external {
        require(stopped == 0, "OSM/is-stopped");
        require(pass(), "OSM/not-passed");
        (bytes32 wut, bool ok) = OsmSourceLike(src).peek();
        if (ok) {
            cur = nxt;
            nxt = Feed(uint128(uint256(wut)), 1);
            zzz = uint64(block.timestamp - (block.timestamp % hop));
            emit LogValue(bytes32(uint256(cur.val)));
        }
    }

    function peek() external view toll returns (bytes32, bool) {
        return (bytes32(uint256(cur.val)), cur.has == 1);
    }

    function peep() external view toll returns (bytes32, bool) {
        return (bytes32(uint256(nxt.val)), nxt.has == 1);
    }

    function read() external view toll returns (bytes32) {
        require(cur.has == 1, "OSM/no-current-value");
        return bytes32(uint256(cur.val));
    }
}

/// @title PriceSource (stand-in)
/// @notice Stand-in for the value an OSM reads (a Median, or a DSValue): chainrisk's own Solidity with ds-value's
/// public interface (`peek`, `read`, `poke`, `void`), not Maker's bytecode. The devnet sets its price directly.
contract PriceSource {
    mapping(address => uint256) public wards;
    bool internal has;
    bytes32 internal val;

    constructor() {
        wards[msg.sender] = 1;
    }

    function peek() external view returns (bytes32, bool) {
        return (val, has);
    }

    function read() external view returns (bytes32) {
        require(has, "PriceSource/no-value");
        return val;
    }

    function poke(bytes32 wut) external {
        require(wards[msg.sender] == 1, "PriceSource/not-authorized");
        val = wut;
        has = true;
    }

    function void() external {
        require(wards[msg.sender] == 1, "PriceSource/not-authorized");
        has = false;
    }
}
