// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title SignedTransaction
/// @notice Reads the call inside an Ethereum transaction's signing payload, so that a contract can hold an account
///         to a call it signed: the payload is the exact byte string whose keccak256 the account's transaction
///         signature covers (EIP-155 legacy `rlp([nonce, gasPrice, gas, to, value, data, chainId, 0, 0])`, or
///         without the chain id before EIP-155; typed `type || rlp([...])` for EIP-2930 (1), EIP-1559 (2),
///         EIP-4844 (3) and EIP-7702 (4), whose fields up to `data` are the same but for the fee fields).
///         Only the fields a proof needs are decoded: chain id, destination and calldata.
/// @dev Internal functions only (inlined). The parser is strict about bounds (every item must lie inside its
///      list and the list inside the payload) but not about canonical encoding: the payload's bytes are fixed by
///      the signature, and an account's wallet only signs canonical ones.
library SignedTransaction {
    /// @notice The payload is not an RLP-encoded transaction of a known type (`at`: byte offset of the fault).
    error MalformedTransaction(uint256 at);
    /// @notice Transaction type `txType` is not one this proof reads (0-4).
    error UnsupportedTransactionType(uint256 txType);

    /// @notice The call a signing payload describes.
    struct Call {
        bool hasChainId; // false for a pre-EIP-155 legacy transaction (valid on every chain)
        uint256 chainId;
        address to; // address(0) for a contract creation
        uint256 dataOffset; // calldata offset of the call data within the payload
        uint256 dataLength;
    }

    /// @notice Decode `payload` (see the title comment); reverts on anything else.
    function decode(bytes calldata payload) internal pure returns (Call memory c) {
        uint256 size = payload.length;
        uint256 first = size == 0 ? 0 : _byte(payload, 0);
        bool typed = first < 0xc0;
        if (typed && (first < 1 || first > 4)) revert UnsupportedTransactionType(first);
        uint256 pos = typed ? 1 : 0;
        uint256 toIndex = first == 1 ? 4 : (typed ? 5 : 3);
        (uint256 start, uint256 len, bool isList) = _item(payload, pos, size);
        if (!isList || start + len != size) revert MalformedTransaction(pos);
        uint256 index;
        for (pos = start; pos < size; ++index) {
            (start, len, isList) = _item(payload, pos, size);
            bool isChainId = typed ? index == 0 : index == 6;
            if (isChainId || index == toIndex) {
                if (isList || len > 32 || (index == toIndex && len != 20)) revert MalformedTransaction(pos);
                uint256 v = _word(payload, start, len);
                if (isChainId) (c.hasChainId, c.chainId) = (true, v);
                else c.to = address(uint160(v));
            } else if (index == toIndex + 2) {
                if (isList) revert MalformedTransaction(pos);
                (c.dataOffset, c.dataLength) = (start, len);
            }
            pos = start + len;
        }
        // legacy: 6 items before EIP-155, 9 after; typed: at least up to the access list
        if (typed ? index < toIndex + 4 : index != 6 && index != 9) revert MalformedTransaction(size);
    }

    /// @notice The 32 bytes of `b` at `at` (the caller keeps `at + 32` within `b`: bytes past the calldata read as
    ///         zero).
    function word(bytes calldata b, uint256 at) internal pure returns (bytes32 w) {
        assembly {
            w := calldataload(add(b.offset, at))
        }
    }

    /// @dev The RLP item at `pos` (which must end by `limit`): its payload's offset and length, and whether it is
    ///      a list.
    function _item(bytes calldata b, uint256 pos, uint256 limit)
        private
        pure
        returns (uint256 start, uint256 len, bool isList)
    {
        if (pos >= limit) revert MalformedTransaction(pos);
        uint256 h = _byte(b, pos);
        if (h < 0x80) return (pos, 1, false);
        isList = h >= 0xc0;
        len = isList ? h - 0xc0 : h - 0x80; // 0-55: the length itself; 56-63: 55 + length of the length
        start = pos + 1;
        if (len > 55) {
            uint256 lenOfLen = len - 55;
            len = _word(b, start, lenOfLen);
            start += lenOfLen;
        }
        if (len > limit || start + len > limit) revert MalformedTransaction(pos);
    }

    /// @dev Big-endian value of the `len` (<= 32) bytes at `start` (bytes past the calldata read as zero, and
    ///      callers bound every item by the payload's length).
    function _word(bytes calldata b, uint256 start, uint256 len) private pure returns (uint256 v) {
        assembly {
            v := shr(mul(8, sub(32, len)), calldataload(add(b.offset, start)))
        }
    }

    function _byte(bytes calldata b, uint256 i) private pure returns (uint256) {
        return _word(b, i, 1);
    }
}
