// SPDX-License-Identifier: MIT
pragma solidity 0.8.19;

/// @title Comet stand-in: configuration records
/// @notice Stand-in: chainrisk's own Solidity for the devnet, not Compound's bytecode. The records mirror the
/// published Compound III (Comet) configuration interface so a deployment reads like the real protocol's.
contract CometStandinConfiguration {
    struct ExtConfiguration {
        bytes32 name32;
        bytes32 symbol32;
    }

    struct Configuration {
        address governor;
        address pauseGuardian;
        address baseToken;
        address baseTokenPriceFeed;
        address extensionDelegate;
        uint64 supplyKink;
        uint64 supplyPerYearInterestRateSlopeLow;
        uint64 supplyPerYearInterestRateSlopeHigh;
        uint64 supplyPerYearInterestRateBase;
        uint64 borrowKink;
        uint64 borrowPerYearInterestRateSlopeLow;
        uint64 borrowPerYearInterestRateSlopeHigh;
        uint64 borrowPerYearInterestRateBase;
        uint64 storeFrontPriceFactor;
        uint64 trackingIndexScale;
        uint64 baseTrackingSupplySpeed;
        uint64 baseTrackingBorrowSpeed;
        uint104 baseMinForRewards;
        uint104 baseBorrowMin;
        uint104 targetReserves;
        AssetConfig[] assetConfigs;
    }

    struct AssetConfig {
        address asset;
        address priceFeed;
        uint8 decimals;
        uint64 borrowCollateralFactor;
        uint64 liquidateCollateralFactor;
        uint64 liquidationFactor;
        uint128 supplyCap;
    }
}

/// @title Comet stand-in: storage layout
/// @notice Stand-in (chainrisk's own Solidity, not Compound's bytecode). Same variables, order and packing as
/// Comet's documented storage, so the public getters (userBasic, userCollateral, totalsCollateral) answer alike.
contract CometStandinStorage {
    struct TotalsBasic {
        uint64 baseSupplyIndex;
        uint64 baseBorrowIndex;
        uint64 trackingSupplyIndex;
        uint64 trackingBorrowIndex;
        uint104 totalSupplyBase;
        uint104 totalBorrowBase;
        uint40 lastAccrualTime;
        uint8 pauseFlags;
    }

    struct TotalsCollateral {
        uint128 totalSupplyAsset;
        uint128 _reserved;
    }

    struct UserBasic {
        int104 principal;
        uint64 baseTrackingIndex;
        uint64 baseTrackingAccrued;
        uint16 assetsIn;
        uint8 _reserved;
    }

    struct UserCollateral {
        uint128 balance;
        uint128 _reserved;
    }

    struct LiquidatorPoints {
        uint32 numAbsorbs;
        uint64 numAbsorbed;
        uint128 approxSpend;
        uint32 _reserved;
    }

    uint64 internal baseSupplyIndex;
    uint64 internal baseBorrowIndex;
    uint64 internal trackingSupplyIndex;
    uint64 internal trackingBorrowIndex;
    uint104 internal totalSupplyBase;
    uint104 internal totalBorrowBase;
    uint40 internal lastAccrualTime;
    uint8 internal pauseFlags;

    mapping(address => TotalsCollateral) public totalsCollateral;
    mapping(address => mapping(address => bool)) public isAllowed;
    mapping(address => uint256) public userNonce;
    mapping(address => UserBasic) public userBasic;
    mapping(address => mapping(address => UserCollateral)) public userCollateral;
    mapping(address => LiquidatorPoints) public liquidatorPoints;
}

/// @title Comet stand-in: checked narrowing and sign conversions
/// @notice Stand-in (chainrisk's own Solidity, not Compound's bytecode); reverts where Comet's CometMath does.
contract CometStandinMath {
    error InvalidUInt64();
    error InvalidUInt104();
    error InvalidUInt128();
    error InvalidInt104();
    error InvalidInt256();
    error NegativeNumber();

    function safe64(uint256 n) internal pure returns (uint64) {
        if (n > type(uint64).max) revert InvalidUInt64();
        return uint64(n);
    }

    function safe104(uint256 n) internal pure returns (uint104) {
        if (n > type(uint104).max) revert InvalidUInt104();
        return uint104(n);
    }

    function safe128(uint256 n) internal pure returns (uint128) {
        if (n > type(uint128).max) revert InvalidUInt128();
        return uint128(n);
    }

    function signed104(uint104 n) internal pure returns (int104) {
        if (n > uint104(type(int104).max)) revert InvalidInt104();
        return int104(n);
    }

    function signed256(uint256 n) internal pure returns (int256) {
        if (n > uint256(type(int256).max)) revert InvalidInt256();
        return int256(n);
    }

    function unsigned104(int104 n) internal pure returns (uint104) {
        if (n < 0) revert NegativeNumber();
        return uint104(n);
    }

    function unsigned256(int256 n) internal pure returns (uint256) {
        if (n < 0) revert NegativeNumber();
        return uint256(n);
    }
}

/// @title Comet stand-in: constants and principal/present value conversions
/// @notice Stand-in (chainrisk's own Solidity, not Compound's bytecode). Scales and rounding as Compound III
/// documents them: present values round down; principal rounds down for supply and up for borrow.
abstract contract CometStandinCore is CometStandinConfiguration, CometStandinStorage, CometStandinMath {
    struct AssetInfo {
        uint8 offset;
        address asset;
        address priceFeed;
        uint64 scale;
        uint64 borrowCollateralFactor;
        uint64 liquidateCollateralFactor;
        uint64 liquidationFactor;
        uint128 supplyCap;
    }

    /// @dev The stand-in packs up to eight collateral assets (Comet: fifteen); the devnet lists four.
    uint8 internal constant MAX_ASSETS = 8;
    uint8 internal constant MAX_BASE_DECIMALS = 18;
    uint64 internal constant MAX_COLLATERAL_FACTOR = FACTOR_SCALE;
    uint8 internal constant PAUSE_SUPPLY_OFFSET = 0;
    uint8 internal constant PAUSE_TRANSFER_OFFSET = 1;
    uint8 internal constant PAUSE_WITHDRAW_OFFSET = 2;
    uint8 internal constant PAUSE_ABSORB_OFFSET = 3;
    uint8 internal constant PAUSE_BUY_OFFSET = 4;
    uint8 internal constant PRICE_FEED_DECIMALS = 8;
    uint64 internal constant SECONDS_PER_YEAR = 31_536_000;
    uint64 internal constant BASE_ACCRUAL_SCALE = 1e6;
    uint64 internal constant BASE_INDEX_SCALE = 1e15;
    uint64 internal constant PRICE_SCALE = uint64(10 ** PRICE_FEED_DECIMALS);
    uint64 internal constant FACTOR_SCALE = 1e18;

    function hasPermission(address owner, address manager) public view returns (bool) {
        return owner == manager || isAllowed[owner][manager];
    }

    /// @dev Supply balance (positive) or borrow balance (negative) of a principal at the stored indices.
    function presentValue(int104 principal) internal view returns (int256) {
        if (principal >= 0) {
            return signed256(presentValueSupply(baseSupplyIndex, uint104(principal)));
        }
        return -signed256(presentValueBorrow(baseBorrowIndex, uint104(-principal)));
    }

    function presentValueSupply(uint64 index, uint104 principal) internal pure returns (uint256) {
        return uint256(principal) * index / BASE_INDEX_SCALE;
    }

    function presentValueBorrow(uint64 index, uint104 principal) internal pure returns (uint256) {
        return uint256(principal) * index / BASE_INDEX_SCALE;
    }

    /// @dev Principal of a present value at the stored indices: supply rounded down, borrow rounded up.
    function principalValue(int256 value) internal view returns (int104) {
        if (value >= 0) {
            return signed104(principalValueSupply(baseSupplyIndex, uint256(value)));
        }
        return -signed104(principalValueBorrow(baseBorrowIndex, uint256(-value)));
    }

    function principalValueSupply(uint64 index, uint256 value) internal pure returns (uint104) {
        return safe104((value * BASE_INDEX_SCALE) / index);
    }

    function principalValueBorrow(uint64 index, uint256 value) internal pure returns (uint104) {
        return safe104((value * BASE_INDEX_SCALE + index - 1) / index);
    }
}

/// @notice Stand-in (chainrisk's own Solidity): the Chainlink-style price feed calls Comet makes (8 decimals).
interface ICometStandinPriceFeed {
    function decimals() external view returns (uint8);

    function latestRoundData() external view returns (uint80, int256, uint256, uint256, uint80);
}

/// @notice Stand-in (chainrisk's own Solidity): the ERC-20 calls the market makes; their return values are checked
/// as Comet documents it (none, or a bool).
interface ICometStandinToken {
    function decimals() external view returns (uint8);

    function balanceOf(address owner) external view returns (uint256);

    function transfer(address to, uint256 amount) external;

    function transferFrom(address from, address to, uint256 amount) external;

    function approve(address spender, uint256 amount) external;
}
