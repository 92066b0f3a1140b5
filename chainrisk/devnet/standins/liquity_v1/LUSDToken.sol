// SPDX-License-Identifier: MIT
pragma solidity 0.8.19;

import "./Interfaces.sol";

/// @title LUSDToken (stand-in)
/// @notice Stand-in for Liquity V1's LUSD (liquity/dev 5174ecd): an 18-decimal ERC-20 minted by BorrowerOperations,
/// burnt by BorrowerOperations, TroveManager and the Stability Pool, with sendToPool / returnFromPool moving
/// deposits and the gas reserve. No permit. chainrisk's own Solidity; not Liquity's bytecode.
contract LUSDToken is ILUSDToken {
    string public constant name = "LUSD Stablecoin";
    string public constant symbol = "LUSD";
    uint8 public constant decimals = 18;

    address public immutable troveManagerAddress;
    address public immutable stabilityPoolAddress;
    address public immutable borrowerOperationsAddress;
    uint256 public totalSupply;
    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);

    constructor(address _troveManager, address _stabilityPool, address _borrowerOperations) {
        troveManagerAddress = _troveManager;
        stabilityPoolAddress = _stabilityPool;
        borrowerOperationsAddress = _borrowerOperations;
    }

    function mint(address _account, uint256 _amount) external {
        require(msg.sender == borrowerOperationsAddress, "LUSDToken: Caller is not BorrowerOperations");
        totalSupply += _amount;
        balanceOf[_account] += _amount;
        emit Transfer(address(0), _account, _amount);
    }

    function burn(address _account, uint256 _amount) external {
        require(
            msg.sender == borrowerOperationsAddress || msg.sender == troveManagerAddress || msg.sender == stabilityPoolAddress,
            "LUSD: Caller is neither BorrowerOperations nor TroveManager nor StabilityPool"
        );
        balanceOf[_account] -= _amount;
        totalSupply -= _amount;
        emit Transfer(_account, address(0), _amount);
    }

    function sendToPool(address _sender, address _poolAddress, uint256 _amount) external {
        require(msg.sender == stabilityPoolAddress, "LUSD: Caller is not the StabilityPool");
        _transfer(_sender, _poolAddress, _amount);
    }

    function returnFromPool(address _poolAddress, address _receiver, uint256 _amount) external {
        require(msg.sender == troveManagerAddress || msg.sender == stabilityPoolAddress, "LUSD: Caller is neither TroveManager nor StabilityPool");
        _transfer(_poolAddress, _receiver, _amount);
    }

    function transfer(address _to, uint256 _amount) external returns (bool) {
        _transfer(msg.sender, _to, _amount);
        return true;
    }

    function approve(address _spender, uint256 _amount) external returns (bool) {
        allowance[msg.sender][_spender] = _amount;
        emit Approval(msg.sender, _spender, _amount);
        return true;
    }

    function transferFrom(address _from, address _to, uint256 _amount) external returns (bool) {
        allowance[_from][msg.sender] -= _amount;
        _transfer(_from, _to, _amount);
        return true;
    }

    function _transfer(address _from, address _to, uint256 _amount) internal {
        balanceOf[_from] -= _amount;
        balanceOf[_to] += _amount;
        emit Transfer(_from, _to, _amount);
    }
}
