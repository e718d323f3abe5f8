"""Building a transaction and waiting for its receipt in as few JSON-RPC round trips as possible.

Why: at ~1M parameters a federated round is about one second, and each of a peer's two transactions used to
cost ~10 sequential requests (web3's `build_transaction` asks for the nonce, gas estimate, priority fee and
latest block one by one; its validation middleware adds an `eth_chainId` before every `eth_call` and
`eth_estimateGas`; then `eth_sendRawTransaction` and receipt polls that sleep 0.05 s whenever the first one
comes too early). On a busy machine every request to the node costs tens of milliseconds.

Here: nonce, fee inputs and gas estimate in one JSON-RPC batch (`prepare`), then one
`eth_sendRawTransactionSync` that answers with the receipt (`send_raw`) — two round trips; receipt polls
(`wait_for_receipt`) start at 5 ms where a receipt is still due. The fields
are the ones web3 fills by default, so the signed transaction and its gas are unchanged; every case the fast
path does not cover (no batch support, no base fee, a reverting estimate, no sync send) falls back to the
request-by-request path, and a revert still surfaces before anything is sent.
"""
from __future__ import annotations

import time
from typing import Any

import requests
from web3 import Web3
from web3._utils.method_formatters import receipt_formatter
from web3.datastructures import AttributeDict
from web3.exceptions import ContractLogicError, TransactionNotFound, Web3RPCError
from web3.types import RPCEndpoint

from ledger_tools.chain.errors import ContractRevert, TransactionFailed, decode_revert

#: receipt polls: first after `FIRST_POLL` s, doubling up to `MAX_POLL` s (a devnet mines within milliseconds;
#: a real chain's block time is seconds, where 0.25 s of extra latency is noise and fewer requests help the node)
FIRST_POLL = 0.005
MAX_POLL = 0.25
_NO_SYNC_SEND: set[str] = set()  # endpoints that answered eth_sendRawTransactionSync with "method not found"


def http_provider(rpc_url: str, timeout: float = 30) -> Web3.HTTPProvider:
    """An HTTP provider that caches `eth_chainId` (it never changes for a node; web3's validation middleware
    would otherwise ask for it before every `eth_call` / `eth_estimateGas`). No other request is cached: blocks
    and receipts must be re-read after a reorg."""
    return Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}, cache_allowed_requests=True,
                             cacheable_requests={"eth_chainId"})


def _int(value: Any) -> int:
    return int(value, 16) if isinstance(value, str) else int(value)


def prepare(w3: Web3, fn: Any, base: dict[str, Any], *, estimate: bool) -> dict[str, Any] | None:
    """The unsigned transaction of `fn` (a contract function or constructor) with its nonce, fee fields and —
    when `estimate` — the raw gas estimate, all from ONE batched request, filled as web3's defaults would
    (pending nonce; maxPriorityFeePerGas = eth_maxPriorityFeePerGas; maxFeePerGas = priority + 2 × the latest
    base fee). None when the node does not answer the batch in full — no batch support, no base fee, or an
    estimate that reverts: the caller then lets web3 fill the transaction one request at a time, which raises
    the revert with its decoded custom error, so nothing is sent that the estimate would have refused."""
    provider = w3.provider
    if not hasattr(provider, "make_batch_request"):
        return None
    # to/data are encoded locally when every RPC-filled field is present; the placeholders are replaced below
    tx = dict(fn.build_transaction({**base, "nonce": 0, "gas": base.get("gas", 1), "maxFeePerGas": 0,
                                    "maxPriorityFeePerGas": 0}))
    sender = tx["from"]
    requests: list[tuple[str, list[Any]]] = [("eth_getTransactionCount", [sender, "pending"]),
                                             ("eth_maxPriorityFeePerGas", []),
                                             ("eth_getBlockByNumber", ["latest", False])]
    if estimate:
        call = {"from": sender, "data": tx["data"], "value": hex(int(tx.get("value", 0)))}
        if tx.get("to"):
            call["to"] = tx["to"]
        requests.append(("eth_estimateGas", [call]))
    try:
        replies = provider.make_batch_request(requests)
    except (ValueError, TypeError, KeyError):  # a node without batch support may answer one error object
        return None
    if not isinstance(replies, list) or len(replies) != len(requests) or any("result" not in r for r in replies):
        return None
    results = [r["result"] for r in replies]
    block, priority = results[2], results[1]
    if not isinstance(block, dict) or block.get("baseFeePerGas") is None or priority is None:
        return None
    tx["nonce"], tx["maxPriorityFeePerGas"] = _int(results[0]), _int(priority)
    tx["maxFeePerGas"] = tx["maxPriorityFeePerGas"] + 2 * _int(block["baseFeePerGas"])
    if estimate:
        tx["gas"] = _int(results[3])
    return tx


def build(w3: Web3, fn: Any, base: dict[str, Any], *, estimate: bool, errors: dict[str, type[ContractRevert]]
          ) -> dict[str, Any]:
    """`prepare`, else web3's request-by-request filling, where a reverting estimate raises its custom error
    (decoded with `errors`) before anything is sent."""
    tx = prepare(w3, fn, base, estimate=estimate)
    if tx is not None:
        return tx
    try:
        return dict(fn.build_transaction({**base, "nonce": w3.eth.get_transaction_count(base["from"], "pending")}))
    except (ContractLogicError, Web3RPCError) as exc:
        raise decode_revert(exc, errors) from None


def send(w3: Web3, raw_tx: bytes, tx_hash: Any) -> Any | None:
    """`send_raw`, a refusal by the node raised as `TransactionFailed`."""
    try:
        return send_raw(w3, raw_tx, tx_hash)
    except Web3RPCError as exc:
        raise TransactionFailed(f"the node rejected the transaction: {exc}") from None


def receipt(w3: Web3, tx_hash: Any, timeout: float) -> Any:
    """`wait_for_receipt`, `TransactionFailed` when the transaction is not mined within `timeout`."""
    raw = wait_for_receipt(w3, tx_hash, timeout)
    if raw is None:
        raise TransactionFailed(f"transaction 0x{bytes(tx_hash).hex()} not mined within {timeout:.0f}s")
    return raw


def send_raw(w3: Web3, raw_tx: bytes, tx_hash: Any) -> Any | None:
    """Send a signed transaction; its (web3-formatted) receipt when the node already reports it mined, else
    None (accepted: poll with `wait_for_receipt`, outside the binding's lock).

    Where the node offers `eth_sendRawTransactionSync` (EIP-7966; anvil does) that is one request answering
    with the receipt; it returns once the transaction is mined (anvil mining on demand: milliseconds; a chain
    with blocks: up to a block time, the binding's next transaction waiting behind it) or when the node's own
    wait runs out, with the transaction pooled (then None: the caller polls). Method unknown (remembered per
    endpoint): a plain `eth_sendRawTransaction`. A transaction the node refuses raises `Web3RPCError`, as
    `send_raw_transaction` does."""
    provider = w3.provider
    uri = getattr(provider, "endpoint_uri", None)
    if uri is not None and uri not in _NO_SYNC_SEND:
        try:
            reply = provider.make_request(RPCEndpoint("eth_sendRawTransactionSync"), ["0x" + bytes(raw_tx).hex()])
        except requests.exceptions.Timeout:  # the node's own wait (anvil: 30 s) raced our HTTP timeout
            if _known(w3, tx_hash):
                return None
            raise
        if reply.get("result"):
            return AttributeDict.recursive(receipt_formatter(reply["result"]))
        error = reply.get("error") or {}
        message = str(error.get("message", "")).lower()
        if error.get("code") == -32601 or ("method" in message and any(
                w in message for w in ("not found", "not supported", "does not exist", "not available"))):
            _NO_SYNC_SEND.add(uri)
        elif _known(w3, tx_hash):  # accepted, not mined within the node's own wait
            return None
        else:  # refused (nonce, funds, ...): reported as the plain send would
            raise Web3RPCError(str(error.get("message", error)), rpc_response=reply)
    w3.eth.send_raw_transaction(raw_tx)
    return None


def _known(w3: Web3, tx_hash: Any) -> bool:
    try:
        w3.eth.get_transaction(tx_hash)
    except TransactionNotFound:
        return False
    return True


def wait_for_receipt(w3: Web3, tx_hash: Any, timeout: float) -> Any | None:
    """The transaction's receipt, polled from `FIRST_POLL` s doubling to `MAX_POLL` s; None after `timeout`."""
    deadline = time.monotonic() + timeout
    delay = FIRST_POLL
    while True:
        try:
            return w3.eth.get_transaction_receipt(tx_hash)
        except TransactionNotFound:
            pass
        now = time.monotonic()
        if now >= deadline:
            return None
        time.sleep(min(delay, deadline - now))
        delay = min(delay * 2, MAX_POLL)
