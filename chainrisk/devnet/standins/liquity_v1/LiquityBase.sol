// SPDX-License-Identifier: MIT
pragma solidity 0.8.19;

import "./Interfaces.sol";

/// @title LiquityBase (stand-in)
/// @notice Stand-in for Liquity V1's LiquityBase, BaseMath and LiquityMath (liquity/dev 5174ecd): the system
/// constants as public getters, the system totals over ActivePool + DefaultPool, TCR and Recovery Mode, and the
/// integer maths (_computeCR, _computeNominalCR, _decPow) with their rounding. chainrisk's own Solidity, written
/// from the published interface and documented maths; not Liquity's bytecode.
abstract contract LiquityBase {
    uint256 public constant DECIMAL_PRECISION = 1e18;
    uint256 public constant _100pct = 1e18;
    uint256 public constant MCR = 1.1e18;
    uint256 public constant CCR = 1.5e18;
    uint256 public constant LUSD_GAS_COMPENSATION = 200e18;
    uint256 public constant MIN_NET_DEBT = 1800e18;
    uint256 public constant PERCENT_DIVISOR = 200;
    uint256 public constant BORROWING_FEE_FLOOR = (DECIMAL_PRECISION / 1000) * 5;
    /// LiquityMath.NICR_PRECISION: nominal ratios (coll / debt, no price) carry 20 decimals.
    uint256 internal constant NICR_PRECISION = 1e20;

    IActivePool public activePool;
    IDefaultPool public defaultPool;
    IPriceFeed public priceFeed;

    function _getCompositeDebt(uint256 _debt) internal pure returns (uint256) {
        return _debt + LUSD_GAS_COMPENSATION;
    }

    function _getNetDebt(uint256 _debt) internal pure returns (uint256) {
        return _debt - LUSD_GAS_COMPENSATION;
    }

    function _getCollGasCompensation(uint256 _entireColl) internal pure returns (uint256) {
        return _entireColl / PERCENT_DIVISOR;
    }

    function getEntireSystemColl() public view returns (uint256) {
        return activePool.getETH() + defaultPool.getETH();
    }

    function getEntireSystemDebt() public view returns (uint256) {
        return activePool.getLUSDDebt() + defaultPool.getLUSDDebt();
    }

    function _getTCR(uint256 _price) internal view returns (uint256) {
        return _computeCR(getEntireSystemColl(), getEntireSystemDebt(), _price);
    }

    function _checkRecoveryMode(uint256 _price) internal view returns (bool) {
        return _getTCR(_price) < CCR;
    }

    function _requireUserAcceptsFee(uint256 _fee, uint256 _amount, uint256 _maxFeePercentage) internal pure {
        require((_fee * DECIMAL_PRECISION) / _amount <= _maxFeePercentage, "Fee exceeded provided maximum");
    }

    function _min(uint256 _a, uint256 _b) internal pure returns (uint256) {
        return _a < _b ? _a : _b;
    }

    function _computeCR(uint256 _coll, uint256 _debt, uint256 _price) internal pure returns (uint256) {
        if (_debt > 0) {
            return (_coll * _price) / _debt;
        }
        return type(uint256).max;
    }

    function _computeNominalCR(uint256 _coll, uint256 _debt) internal pure returns (uint256) {
        if (_debt > 0) {
            return (_coll * NICR_PRECISION) / _debt;
        }
        return type(uint256).max;
    }

    /// LiquityMath.decMul: product of two 18-decimal numbers, rounded half up.
    function _decMul(uint256 x, uint256 y) internal pure returns (uint256) {
        return (x * y + DECIMAL_PRECISION / 2) / DECIMAL_PRECISION;
    }

    /// LiquityMath._decPow: base^minutes by exponentiation by squaring, each product rounded by _decMul.
    function _decPow(uint256 _base, uint256 _minutes) internal pure returns (uint256) {
        if (_minutes > 525600000) {
            _minutes = 525600000;
        }
        if (_minutes == 0) {
            return DECIMAL_PRECISION;
        }
        uint256 y = DECIMAL_PRECISION;
        uint256 x = _base;
        uint256 n = _minutes;
        while (n > 1) {
            if (n % 2 == 0) {
                x = _decMul(x, x);
                n = n / 2;
            } else {
                y = _decMul(x, y);
                x = _decMul(x, x);
                n = (n - 1) / 2;
            }
        }
        return _decMul(x, y);
    }
}
