// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title ReputationMath
/// @notice The reputation rule of a federation in fixed point: after each finalized round a member's voting
///         weight moves a step alpha toward the round's outcome (1 if it voted the finalized digest and did not
///         exclude itself, else 0), w <- w + alpha * (outcome - w). The off-chain mirror is
///         `consensus.reputation`; both must round the same way.
/// @dev Internal functions only, so they are inlined into the caller: no DELEGATECALL, no extra gas.
///      Weights are in units of WEIGHT_ONE (1.0), alpha in basis points.
library ReputationMath {
    /// @notice Fixed-point unit of voting weight (1.0); reputation converges to it for always-agreeing members.
    uint64 internal constant WEIGHT_ONE = 1_000_000;
    uint256 internal constant BPS = 10_000;
    uint256 internal constant WAD = 1e18;

    /// @dev One finalized round's update w <- w + alpha * (outcome - w), rounding toward the old weight.
    function step(uint64 w, bool rewarded, uint256 alphaBps) internal pure returns (uint64) {
        if (!rewarded) return uint64((uint256(w) * (BPS - alphaBps)) / BPS);
        if (w <= WEIGHT_ONE) return w + uint64((uint256(WEIGHT_ONE - w) * alphaBps) / BPS);
        return w - uint64((uint256(w - WEIGHT_ONE) * alphaBps) / BPS);
    }

    /// @dev `k` finalized rounds of outcome 0 in closed form, w * (1 - alpha)^k, with (1 - alpha)^k in WAD
    ///      fixed point rounded down at every multiplication (see `rpow`).
    function decay(uint64 w, uint256 alphaBps, uint256 k) internal pure returns (uint64) {
        return uint64((uint256(w) * rpow((BPS - alphaBps) * 1e14, k)) / WAD);
    }

    /// @dev x^n for WAD fixed point x, rounding down at every step (exponentiation by squaring).
    function rpow(uint256 x, uint256 n) internal pure returns (uint256 z) {
        z = WAD;
        while (n > 0) {
            if (n & 1 != 0) z = (z * x) / WAD;
            n >>= 1;
            if (n > 0) x = (x * x) / WAD;
        }
    }
}
