// SPDX-License-Identifier: MIT
pragma solidity 0.8.19;

import "./Interfaces.sol";

/// @title ActivePool (stand-in)
/// @notice Stand-in for Liquity V1's ActivePool (liquity/dev 5174ecd): the ETH and LUSD debt of active troves, with
/// getETH / getLUSDDebt and the same callers allowed. chainrisk's own Solidity; not Liquity's bytecode.
contract ActivePool is IActivePool {
    string public constant NAME = "ActivePool";

    address public borrowerOperationsAddress;
    address public troveManagerAddress;
    address public stabilityPoolAddress;
    address public defaultPoolAddress;
    address private deployer;
    uint256 internal ETH;
    uint256 internal LUSDDebt;

    event ActivePoolLUSDDebtUpdated(uint256 _LUSDDebt);
    event ActivePoolETHBalanceUpdated(uint256 _ETH);
    event EtherSent(address _to, uint256 _amount);

    constructor() {
        deployer = msg.sender;
    }

    function setAddresses(address _borrowerOperations, address _troveManager, address _stabilityPool, address _defaultPool)
        external
    {
        require(msg.sender == deployer, "ActivePool: caller is not the owner");
        borrowerOperationsAddress = _borrowerOperations;
        troveManagerAddress = _troveManager;
        stabilityPoolAddress = _stabilityPool;
        defaultPoolAddress = _defaultPool;
        deployer = address(0);
    }

    function getETH() external view returns (uint256) {
        return ETH;
    }

    function getLUSDDebt() external view returns (uint256) {
        return LUSDDebt;
    }

    function sendETH(address _account, uint256 _amount) external {
        require(
            msg.sender == borrowerOperationsAddress || msg.sender == troveManagerAddress || msg.sender == stabilityPoolAddress,
            "ActivePool: Caller is neither BorrowerOperations nor TroveManager nor StabilityPool"
        );
        ETH -= _amount;
        emit ActivePoolETHBalanceUpdated(ETH);
        emit EtherSent(_account, _amount);
        (bool success,) = _account.call{value: _amount}("");
        require(success, "ActivePool: sending ETH failed");
    }

    function increaseLUSDDebt(uint256 _amount) external {
        require(msg.sender == borrowerOperationsAddress || msg.sender == troveManagerAddress, "ActivePool: Caller is neither BO nor TroveM");
        LUSDDebt += _amount;
        emit ActivePoolLUSDDebtUpdated(LUSDDebt);
    }

    function decreaseLUSDDebt(uint256 _amount) external {
        require(
            msg.sender == borrowerOperationsAddress || msg.sender == troveManagerAddress || msg.sender == stabilityPoolAddress,
            "ActivePool: Caller is neither BorrowerOperations nor TroveManager nor StabilityPool"
        );
        LUSDDebt -= _amount;
        emit ActivePoolLUSDDebtUpdated(LUSDDebt);
    }

    receive() external payable {
        require(msg.sender == borrowerOperationsAddress || msg.sender == defaultPoolAddress, "ActivePool: Caller is neither BO nor Default Pool");
        ETH += msg.value;
        emit ActivePoolETHBalanceUpdated(ETH);
    }
}

/// @title DefaultPool (stand-in)
/// @notice Stand-in for Liquity V1's DefaultPool (liquity/dev 5174ecd): the ETH and LUSD debt redistributed by
/// liquidations and not yet applied to troves. chainrisk's own Solidity; not Liquity's bytecode.
contract DefaultPool is IDefaultPool {
    string public constant NAME = "DefaultPool";

    address public troveManagerAddress;
    address public activePoolAddress;
    address private deployer;
    uint256 internal ETH;
    uint256 internal LUSDDebt;

    event DefaultPoolLUSDDebtUpdated(uint256 _LUSDDebt);
    event DefaultPoolETHBalanceUpdated(uint256 _ETH);
    event EtherSent(address _to, uint256 _amount);

    constructor() {
        deployer = msg.sender;
    }

    function setAddresses(address _troveManager, address _activePool) external {
        require(msg.sender == deployer, "DefaultPool: caller is not the owner");
        troveManagerAddress = _troveManager;
        activePoolAddress = _activePool;
        deployer = address(0);
    }

    function getETH() external view returns (uint256) {
        return ETH;
    }

    function getLUSDDebt() external view returns (uint256) {
        return LUSDDebt;
    }

    function sendETHToActivePool(uint256 _amount) external {
        require(msg.sender == troveManagerAddress, "DefaultPool: Caller is not the TroveManager");
        ETH -= _amount;
        emit DefaultPoolETHBalanceUpdated(ETH);
        emit EtherSent(activePoolAddress, _amount);
        (bool success,) = activePoolAddress.call{value: _amount}("");
        require(success, "DefaultPool: sending ETH failed");
    }

    function increaseLUSDDebt(uint256 _amount) external {
        require(msg.sender == troveManagerAddress, "DefaultPool: Caller is not the TroveManager");
        LUSDDebt += _amount;
        emit DefaultPoolLUSDDebtUpdated(LUSDDebt);
    }

    function decreaseLUSDDebt(uint256 _amount) external {
        require(msg.sender == troveManagerAddress, "DefaultPool: Caller is not the TroveManager");
        LUSDDebt -= _amount;
        emit DefaultPoolLUSDDebtUpdated(LUSDDebt);
    }

    receive() external payable {
        require(msg.sender == activePoolAddress, "DefaultPool: Caller is not the ActivePool");
        ETH += msg.value;
        emit DefaultPoolETHBalanceUpdated(ETH);
    }
}

/// @title CollSurplusPool (stand-in)
/// @notice Stand-in for Liquity V1's CollSurplusPool (liquity/dev 5174ecd): collateral above the MCR cap of a
/// Recovery Mode liquidation, claimable by its borrower. chainrisk's own Solidity; not Liquity's bytecode.
contract CollSurplusPool is ICollSurplusPool {
    string public constant NAME = "CollSurplusPool";

    address public borrowerOperationsAddress;
    address public troveManagerAddress;
    address public activePoolAddress;
    address private deployer;
    uint256 internal ETH;
    mapping(address => uint256) internal balances;

    event CollBalanceUpdated(address indexed _account, uint256 _newBalance);
    event EtherSent(address _to, uint256 _amount);

    constructor() {
        deployer = msg.sender;
    }

    function setAddresses(address _borrowerOperations, address _troveManager, address _activePool) external {
        require(msg.sender == deployer, "CollSurplusPool: caller is not the owner");
        borrowerOperationsAddress = _borrowerOperations;
        troveManagerAddress = _troveManager;
        activePoolAddress = _activePool;
        deployer = address(0);
    }

    function getETH() external view returns (uint256) {
        return ETH;
    }

    function getCollateral(address _account) external view returns (uint256) {
        return balances[_account];
    }

    function accountSurplus(address _account, uint256 _amount) external {
        require(msg.sender == troveManagerAddress, "CollSurplusPool: Caller is not TroveManager");
        balances[_account] += _amount;
        emit CollBalanceUpdated(_account, balances[_account]);
    }

    function claimColl(address _account) external {
        require(msg.sender == borrowerOperationsAddress, "CollSurplusPool: Caller is not Borrower Operations");
        uint256 claimableColl = balances[_account];
        require(claimableColl > 0, "CollSurplusPool: No collateral available to claim");
        balances[_account] = 0;
        emit CollBalanceUpdated(_account, 0);
        ETH -= claimableColl;
        emit EtherSent(_account, claimableColl);
        (bool success,) = _account.call{value: claimableColl}("");
        require(success, "CollSurplusPool: sending ETH failed");
    }

    receive() external payable {
        require(msg.sender == activePoolAddress, "CollSurplusPool: Caller is not Active Pool");
        ETH += msg.value;
    }
}

/// @title GasPool (stand-in)
/// @notice Stand-in for Liquity V1's GasPool: holds the 200 LUSD liquidation reserve of every trove (moved by the
/// LUSD token on TroveManager's and BorrowerOperations' behalf). chainrisk's own Solidity.
contract GasPool {
    string public constant NAME = "GasPool";
}

/// @title PriceFeed (stand-in)
/// @notice Stand-in for Liquity V1's PriceFeed: lastGoodPrice (ETH/USD, 18 decimals) and fetchPrice, which here
/// returns the last price the devnet set instead of reading Chainlink and Tellor. chainrisk's own Solidity.
contract PriceFeed is IPriceFeed {
    string public constant NAME = "PriceFeed";

    address public owner;
    uint256 public lastGoodPrice;

    event LastGoodPriceUpdated(uint256 _lastGoodPrice);

    constructor(uint256 _price) {
        owner = msg.sender;
        lastGoodPrice = _price;
        emit LastGoodPriceUpdated(_price);
    }

    /// Stand-in only: the devnet moves the price (the real feed follows Chainlink, with Tellor as fallback).
    function setPrice(uint256 _price) external {
        require(msg.sender == owner, "PriceFeed: caller is not the owner");
        lastGoodPrice = _price;
        emit LastGoodPriceUpdated(_price);
    }

    function fetchPrice() external returns (uint256) {
        emit LastGoodPriceUpdated(lastGoodPrice);
        return lastGoodPrice;
    }
}
