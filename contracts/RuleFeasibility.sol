// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title RuleFeasibility
/// @notice The on-chain mirror of `consensus.feasibility.min_valid_updates`: the fewest valid updates a rule
///         needs to tolerate f Byzantine members. A rule is a base rule behind optional pre-aggregators
///         (`nnm+krum`, `bucketing+nnm+median`). Base rules: FedAvg 1, Krum / Multi-Krum 2f+3, trimmed mean /
///         median / centered clipping 2f+1, Bulyan 4f+3. Pre-aggregators, each fed by the rule behind it (what
///         that needs = inner): nnm and arc max(inner, f+1), bucketing (s = 2) max(f+1, 2(inner-1)+1),
///         rescale max(inner, 2f+1); a pre-aggregator alone needs what it needs with inner = 1.
///         `tests/contract/test_governance_rules.py` checks the mirror against the Python for every rule.
/// @dev Internal functions only (inlined). Unknown names revert `UnknownRule`, as the Python raises.
library RuleFeasibility {
    /// @notice `rule` is not a known rule name (base rule with optional pre-aggregator prefixes).
    error UnknownRule(string rule);

    uint256 private constant BUCKET_SIZE = 2; // consensus.feasibility.BUCKET_SIZE

    /// @notice Fewest valid updates `rule` needs to tolerate `f`.
    function minValid(string memory rule, uint256 f) internal pure returns (uint256) {
        bytes memory b = bytes(rule);
        (bool isPre, uint256 alone) = _pre(keccak256(b), f, 1);
        if (isPre) return alone; // a pre-aggregator checking its own precondition
        return _need(b, 0, f, rule);
    }

    /// @dev What the composition starting at byte `start` needs: its first part fed by the rest (innermost first).
    function _need(bytes memory b, uint256 start, uint256 f, string memory rule) private pure returns (uint256) {
        for (uint256 i = start; i < b.length; ++i) {
            if (b[i] == "+") {
                uint256 inner = _need(b, i + 1, f, rule);
                (bool isPre, uint256 need) = _pre(_slice(b, start, i), f, inner);
                if (!isPre) revert UnknownRule(rule);
                return need;
            }
        }
        return _base(_slice(b, start, b.length), f, rule);
    }

    function _pre(bytes32 part, uint256 f, uint256 inner) private pure returns (bool, uint256) {
        uint256 majority = f + 1;
        if (part == keccak256("nnm") || part == keccak256("arc") || part == keccak256("dedup")) return (true, inner > majority ? inner : majority);
        if (part == keccak256("bucketing")) {
            uint256 buckets = BUCKET_SIZE * (inner - 1) + 1;
            return (true, buckets > majority ? buckets : majority);
        }
        if (part == keccak256("rescale")) {
            uint256 trim = 2 * f + 1; // a trimmed mean (f per side) of the updates' components along the aggregate
            return (true, inner > trim ? inner : trim);
        }
        return (false, 0);
    }

    function _base(bytes32 part, uint256 f, string memory rule) private pure returns (uint256) {
        if (part == keccak256("fedavg")) return 1;
        if (part == keccak256("krum") || part == keccak256("multi_krum")) return 2 * f + 3;
        if (part == keccak256("trimmed_mean") || part == keccak256("median") || part == keccak256("centered_clipping"))
        {
            return 2 * f + 1;
        }
        if (part == keccak256("bulyan")) return 4 * f + 3;
        revert UnknownRule(rule);
    }

    function _slice(bytes memory b, uint256 from, uint256 to) private pure returns (bytes32 h) {
        assembly ("memory-safe") {
            h := keccak256(add(add(b, 32), from), sub(to, from))
        }
    }
}
