// SPDX-License-Identifier: AGPL-3.0-or-later
pragma solidity 0.8.19;

interface RegistryJoinLike {
    function vat() external view returns (address);
    function ilk() external view returns (bytes32);
    function gem() external view returns (address);
    function dec() external view returns (uint256);
}

interface RegistrySpotLike {
    function ilks(bytes32) external view returns (address pip, uint256 mat);
}

interface RegistryDogLike {
    function ilks(bytes32) external view returns (address clip, uint256 chop, uint256 hole, uint256 dirt);
}

interface RegistryTokenLike {
    function name() external view returns (string memory);
    function symbol() external view returns (string memory);
}

/// @title IlkRegistry (stand-in)
/// @notice Stand-in for Maker's IlkRegistry: chainrisk's own Solidity written from the public interface of
/// makerdao/ilk-registry src/IlkRegistry.sol, not Maker's bytecode. `add(join)` records the join's ilk, gem and
/// dec, the Spotter's pip and the Dog's clip (class 1); `list()`, `count()`, `info(ilk)` and the per-field getters
/// answer as mainnet's. No Cat (flip) ilks.
contract IlkRegistry {
    mapping(address => uint256) public wards;
    address public immutable vat;
    address public dog;
    address public spot;

    struct Ilk {
        uint96 pos;
        address join;
        address gem;
        uint8 dec;
        uint96 class;
        address pip;
        address xlip;
        string name;
        string symbol;
    }

    mapping(bytes32 => Ilk) public ilkData;
    bytes32[] internal ilks;

    event AddIlk(bytes32 indexed ilk);

    constructor(address vat_, address dog_, address spot_) {
        vat = vat_;
        dog = dog_;
        spot = spot_;
        wards[msg.sender] = 1;
    }

    function add(address adapter) external {
        RegistryJoinLike join_ = RegistryJoinLike(adapter);
        require(join_.vat() == vat, "IlkRegistry/invalid-join-adapter-vat");
        bytes32 ilk = join_.ilk();
        require(ilk != 0, "IlkRegistry/ilk-adapter-invalid");
        require(ilkData[ilk].join == address(0), "IlkRegistry/ilk-already-exists");
        (address pip,) = RegistrySpotLike(spot).ilks(ilk);
        require(pip != address(0), "IlkRegistry/pip-invalid");
        (address clip,,,) = RegistryDogLike(dog).ilks(ilk);
        require(clip != address(0), "IlkRegistry/invalid-auction-contract");
        address gem_ = join_.gem();
        ilks.push(ilk);
        ilkData[ilk] = Ilk({
            pos: uint96(ilks.length - 1),
            join: adapter,
            gem: gem_,
            dec: uint8(join_.dec()),
            class: 1,
            pip: pip,
            xlip: clip,
            name: RegistryTokenLike(gem_).name(),
            symbol: RegistryTokenLike(gem_).symbol()
        });
        emit AddIlk(ilk);
    }

    function count() external view returns (uint256) {
        return ilks.length;
    }

    function list() external view returns (bytes32[] memory) {
        return ilks;
    }

    function get(uint256 pos_) external view returns (bytes32) {
        require(pos_ < ilks.length, "IlkRegistry/index-out-of-range");
        return ilks[pos_];
    }

    function info(bytes32 ilk)
        external
        view
        returns (
            string memory name,
            string memory symbol,
            uint256 class,
            uint256 dec,
            address gem,
            address pip,
            address join,
            address xlip
        )
    {
        Ilk memory i = ilkData[ilk];
        return (i.name, i.symbol, i.class, i.dec, i.gem, i.pip, i.join, i.xlip);
    }

    function pos(bytes32 ilk) external view returns (uint256) {
        return ilkData[ilk].pos;
    }

    function class(bytes32 ilk) external view returns (uint256) {
        return ilkData[ilk].class;
    }

    function gem(bytes32 ilk) external view returns (address) {
        return ilkData[ilk].gem;
    }

    function pip(bytes32 ilk) external view returns (address) {
        return ilkData[ilk].pip;
    }

    function join(bytes32 ilk) external view returns (address) {
        return ilkData[ilk].join;
    }

    function xlip(bytes32 ilk) external view returns (address) {
        return ilkData[ilk].xlip;
    }

    function dec(bytes32 ilk) external view returns (uint256) {
        return ilkData[ilk].dec;
    }

    function symbol(bytes32 ilk) external view returns (string memory) {
        return ilkData[ilk].symbol;
    }

    function name(bytes32 ilk) external view returns (string memory) {
        return ilkData[ilk].name;
    }
}
