// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @notice Test-only: a contract account that forwards `commit` to a ledger, the way a smart-contract wallet or an
///         EIP-7702-delegated account would. The ledger must refuse it (NotDirectCall): its commitment would not be
///         a transaction signed by the member, so a mismatch with its envelopes could not be proven.
interface ICommit {
    function commit(uint256 round, bytes32 updateHash, string calldata cid, uint32 numSamples, uint64 epsilonE6,
        uint64 deltaE18) external;
}

contract CommitForwarder {
    function forward(address ledger, uint256 round, bytes32 updateHash) external {
        ICommit(ledger).commit(round, updateHash, "bafkreiforwarded", 1, type(uint64).max, 0);
    }
}
