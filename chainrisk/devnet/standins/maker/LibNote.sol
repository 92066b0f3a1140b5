// SPDX-License-Identifier: AGPL-3.0-or-later
pragma solidity 0.8.19;

/// @title LibNote (stand-in)
/// @notice makerdao/dss src/lib.sol's LibNote, written from its documented behaviour: the anonymous note dss 1.0.0's
/// Spotter and Jug log for each noted call (their files among them).
contract LibNote {
    /// @dev Declared for the ABI; the `note` modifier emits it by hand.
    event LogNote(bytes4 indexed sig, address indexed usr, bytes32 indexed arg1, bytes32 indexed arg2, bytes data)
        anonymous;

    /// @dev After the body: log4 of 288 bytes (offset 0x20, length 224, calldata[0:224], zero-padded past the
    /// call's end) under topics (msg.sig << 224, the caller, calldata word at 4, at 36).
    modifier note() {
        _;
        assembly {
            let mark := mload(0x40)
            mstore(0x40, add(mark, 288))
            mstore(mark, 0x20)
            mstore(add(mark, 0x20), 224)
            calldatacopy(add(mark, 0x40), 0, 224)
            log4(mark, 288, shl(224, shr(224, calldataload(0))), caller(), calldataload(4), calldataload(36))
        }
    }
}
