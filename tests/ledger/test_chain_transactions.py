"""Transactions in two round trips (`ledger_tools.chain.transactions`): same signed fields and gas as web3's own
filling, reverts still decoded before sending, and every fallback (no batch, no sync send) still works."""
from __future__ import annotations

import pytest
from web3 import Web3

from ledger_tools.chain import NO_DP, AlreadyCommitted
from ledger_tools.chain import transactions as txs


def _web3_filled(member, fn) -> dict:
    """What web3's request-by-request filling gives for the same call (the path used before)."""
    w3 = member.w3
    base = {"from": member.account.address, "chainId": w3.eth.chain_id, "value": 0,
            "nonce": w3.eth.get_transaction_count(member.account.address, "pending")}
    return dict(fn.build_transaction(base))


def test_prepared_transaction_matches_web3s_own_filling(federation):
    m = federation.members[0]
    fn = m.contract.functions.commit(1, b"\x01" * 32, "bafkreiupdate", 100, NO_DP, 0)
    ours = txs.prepare(m.w3, fn, {"from": m.account.address, "chainId": m.chain_id, "value": 0}, estimate=True)
    theirs = _web3_filled(m, fn)
    assert ours is not None
    for key in ("nonce", "gas", "maxFeePerGas", "maxPriorityFeePerGas", "to", "data", "value", "chainId"):
        assert ours[key] == theirs[key], key


def test_a_reverting_estimate_falls_back_and_raises_the_custom_error(federation):
    m = federation.members[0]
    m.commit(1, b"\x01" * 32, "bafkreiupdate", 100)
    fn = m.contract.functions.commit(1, b"\x02" * 32, "bafkreiother", 100, NO_DP, 0)
    assert txs.prepare(m.w3, fn, {"from": m.account.address, "chainId": m.chain_id, "value": 0},
                       estimate=True) is None
    nonce = m.w3.eth.get_transaction_count(m.account.address)
    with pytest.raises(AlreadyCommitted):
        m.commit(1, b"\x02" * 32, "bafkreiother", 100)
    assert m.w3.eth.get_transaction_count(m.account.address) == nonce, "nothing was sent"


def test_without_batch_or_sync_send_the_plain_path_still_mines(federation, monkeypatch):
    m = federation.members[0]
    provider = m.w3.provider
    monkeypatch.setattr(provider, "make_batch_request", lambda requests: {"error": {"code": -32600}}, raising=False)
    inner = provider.make_request

    def no_sync(method, params):
        if method == "eth_sendRawTransactionSync":
            return {"jsonrpc": "2.0", "id": 1, "error": {"code": -32601, "message": "Method not found"}}
        return inner(method, params)

    monkeypatch.setattr(provider, "make_request", no_sync)
    monkeypatch.setattr(txs, "_NO_SYNC_SEND", set())
    receipt = m.commit(1, b"\x01" * 32, "bafkreiupdate", 100)
    assert receipt.gas_used > 0 and provider.endpoint_uri in txs._NO_SYNC_SEND
    assert [c.member for c in m.commitments(1)] == [m.account.address]


def test_receipt_wait_gives_up_after_its_timeout(anvil):
    w3 = Web3(txs.http_provider(anvil.rpc_url))
    assert txs.wait_for_receipt(w3, "0x" + "ab" * 32, timeout=0.05) is None
