// SPDX-License-Identifier: MIT
pragma solidity 0.8.19;

import "./Interfaces.sol";

/// @title SortedTroves (stand-in)
/// @notice Stand-in for Liquity V1's SortedTroves: a doubly linked list of active troves by nominal ICR, highest
/// first, with the real getters (getSize, getFirst, getLast, getNext, getPrev, contains). The position hints are
/// ignored: insert walks the list from the tail, which is fine for a devnet's troves. chainrisk's own
/// Solidity; not Liquity's bytecode.
contract SortedTroves is ISortedTroves {
    string public constant NAME = "SortedTroves";

    struct Node {
        bool exists;
        address nextId;
        address prevId;
    }

    address public borrowerOperationsAddress;
    ITroveManager public troveManager;
    address private deployer;
    address internal head;
    address internal tail;
    uint256 internal size;
    mapping(address => Node) internal nodes;

    event NodeAdded(address _id, uint256 _NICR);
    event NodeRemoved(address _id);

    constructor() {
        deployer = msg.sender;
    }

    function setParams(address _troveManagerAddress, address _borrowerOperationsAddress) external {
        require(msg.sender == deployer, "SortedTroves: caller is not the owner");
        troveManager = ITroveManager(_troveManagerAddress);
        borrowerOperationsAddress = _borrowerOperationsAddress;
        deployer = address(0);
    }

    function insert(address _id, uint256 _NICR, address, address) external {
        require(msg.sender == borrowerOperationsAddress, "SortedTroves: Caller is not BorrowerOperations");
        _insert(_id, _NICR);
    }

    function reInsert(address _id, uint256 _newNICR, address, address) external {
        require(msg.sender == borrowerOperationsAddress, "SortedTroves: Caller is not BorrowerOperations");
        require(nodes[_id].exists, "SortedTroves: List does not contain the id");
        _remove(_id);
        _insert(_id, _newNICR);
    }

    function remove(address _id) external {
        require(msg.sender == address(troveManager), "SortedTroves: Caller is not the TroveManager");
        _remove(_id);
    }

    function _insert(address _id, uint256 _NICR) internal {
        require(!nodes[_id].exists, "SortedTroves: List already contains the node");
        require(_id != address(0), "SortedTroves: Id cannot be zero");
        require(_NICR > 0, "SortedTroves: NICR must be positive");
        // From the tail: the devnet opens troves from the highest ICR down, so a new one usually lands there.
        address prev = tail;
        while (prev != address(0) && troveManager.getNominalICR(prev) < _NICR) {
            prev = nodes[prev].prevId;
        }
        address next = prev == address(0) ? head : nodes[prev].nextId;
        nodes[_id] = Node(true, next, prev);
        if (prev == address(0)) {
            head = _id;
        } else {
            nodes[prev].nextId = _id;
        }
        if (next == address(0)) {
            tail = _id;
        } else {
            nodes[next].prevId = _id;
        }
        size += 1;
        emit NodeAdded(_id, _NICR);
    }

    function _remove(address _id) internal {
        require(nodes[_id].exists, "SortedTroves: List does not contain the id");
        Node memory node = nodes[_id];
        if (node.prevId == address(0)) {
            head = node.nextId;
        } else {
            nodes[node.prevId].nextId = node.nextId;
        }
        if (node.nextId == address(0)) {
            tail = node.prevId;
        } else {
            nodes[node.nextId].prevId = node.prevId;
        }
        delete nodes[_id];
        size -= 1;
        emit NodeRemoved(_id);
    }

    function contains(address _id) external view returns (bool) {
        return nodes[_id].exists;
    }

    function getSize() external view returns (uint256) {
        return size;
    }

    function getFirst() external view returns (address) {
        return head;
    }

    function getLast() external view returns (address) {
        return tail;
    }

    function getNext(address _id) external view returns (address) {
        return nodes[_id].nextId;
    }

    function getPrev(address _id) external view returns (address) {
        return nodes[_id].prevId;
    }
}
