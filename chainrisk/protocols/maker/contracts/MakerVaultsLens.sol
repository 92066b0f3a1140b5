// SPDX-License-Identifier: MIT
pragma solidity 0.8.19;

interface IVatUrns {
    function urns(bytes32 ilk, address urn) external view returns (uint256 ink, uint256 art);
}

interface ICdpManagerReader {
    function urns(uint256 cdp) external view returns (address);
    function owns(uint256 cdp) external view returns (address);
    function ilks(uint256 cdp) external view returns (bytes32);
}

/// @notice Read-only lens for chainrisk: many Maker vaults in one eth_call. Never deployed; the indexer places its
/// runtime code at an unused address with an eth_call state override. It calls only the Vat's and the
/// DssCdpManager's public getters.
contract MakerVaultsLens {
    /// @return out ink then art [wad] of each (ilks[k], urns[k]), as Vat.urns answers them.
    function vaults(address vat, bytes32[] calldata ilks, address[] calldata urns)
        external
        view
        returns (uint256[] memory out)
    {
        out = new uint256[](2 * urns.length);
        for (uint256 k = 0; k < urns.length; k++) {
            (out[2 * k], out[2 * k + 1]) = IVatUrns(vat).urns(ilks[k], urns[k]);
        }
    }

    /// @return urns each cdp id's UrnHandler, owners its owner now, ilks its collateral type.
    function cdps(address manager, uint256[] calldata ids)
        external
        view
        returns (address[] memory urns, address[] memory owners, bytes32[] memory ilks)
    {
        urns = new address[](ids.length);
        owners = new address[](ids.length);
        ilks = new bytes32[](ids.length);
        for (uint256 k = 0; k < ids.length; k++) {
            urns[k] = ICdpManagerReader(manager).urns(ids[k]);
            owners[k] = ICdpManagerReader(manager).owns(ids[k]);
            ilks[k] = ICdpManagerReader(manager).ilks(ids[k]);
        }
    }
}
