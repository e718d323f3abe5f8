"""How deep a transaction is buried: the reads behind a reader's confirmation rule.

A transaction counts as done only once `confirmations` blocks sit on top of the block that holds it (0 on a
local devnet, more on a real chain, where a reorg can drop recent blocks). The record of what a transaction did
is read from the contract's events (`Committed`, `Voted`: block and transaction hash), which a node serves from
its canonical chain only, so a dropped transaction simply disappears from them; these helpers add the chain
head, and whether a transaction the reader sent is still waiting in the node's pool (it may yet be mined, so
it must not be sent twice).
"""
from __future__ import annotations

from web3.exceptions import BlockNotFound, TransactionNotFound

from ledger_tools.chain.binding import FederationLedger, _rpc_guard


def is_deep_enough(head: int, block: int, confirmations: int) -> bool:
    """A transaction in `block` is done once `confirmations` blocks are on top of it (0: once mined)."""
    return head - block >= confirmations


@_rpc_guard
def head_block(ledger: FederationLedger) -> int:
    """The number of the chain's latest block."""
    return int(ledger.w3.eth.block_number)


@_rpc_guard
def awaiting_inclusion(ledger: FederationLedger, tx_hash: str) -> bool:
    """True if the node knows the transaction but no block holds it yet (e.g. put back in the pool by a
    reorg): it may still be mined, so it must not be replaced by a second one."""
    try:
        tx = ledger.w3.eth.get_transaction(tx_hash)
    except TransactionNotFound:
        return False
    return tx.get("blockNumber") is None


@_rpc_guard
def block_hash(ledger: FederationLedger, number: int | str = "latest") -> tuple[int, str] | None:
    """(number, hash) of block `number` (default: the head); None if the chain has no such block (any more)."""
    try:
        block = ledger.w3.eth.get_block(number)
    except BlockNotFound:
        return None
    return int(block["number"]), "0x" + bytes(block["hash"]).hex().removeprefix("0x")
