// SPDX-License-Identifier: MIT
pragma solidity 0.8.19;

import "@openzeppelin/contracts/proxy/transparent/TransparentUpgradeableProxy.sol";

/// @title Compound V3 Comet stand-in: the market's proxy
/// @notice Stand-in: chainrisk's devnet deploys its Comet stand-in behind OpenZeppelin's TransparentUpgradeableProxy
/// (installed from npm at set-up, never committed), the proxy kind Compound III's cTokens use, so the adapter is
/// tested through a proxy (ERC-1967 slots, admin calls kept apart) as well as against a bare market.
contract CometStandinProxy is TransparentUpgradeableProxy {
    constructor(address logic, address admin, bytes memory data) TransparentUpgradeableProxy(logic, admin, data) {}
}
