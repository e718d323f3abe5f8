// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title ReentrantClaimer
/// @notice Test-only attacker: claims a reward and, when paid, tries to claim again from inside `receive`.
contract ReentrantClaimer {
    address public immutable ledger;
    bytes public payload;
    bool public reentered;
    bool public reentrySucceeded;
    bytes public reentryRevert;
    uint256 public received;

    constructor(address ledger_) {
        ledger = ledger_;
    }

    /// @notice Call the ledger with `payload_` (an encoded `claim(...)`); the same payload is replayed on payment.
    function attack(bytes calldata payload_) external {
        payload = payload_;
        (bool ok, bytes memory ret) = ledger.call(payload_);
        if (!ok) {
            assembly {
                revert(add(ret, 32), mload(ret))
            }
        }
    }

    receive() external payable {
        received += msg.value;
        if (reentered) return;
        reentered = true;
        (bool ok, bytes memory ret) = ledger.call(payload);
        reentrySucceeded = ok;
        reentryRevert = ret;
    }
}
