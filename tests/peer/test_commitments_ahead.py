"""The round's commitments read while the updates are exchanged (`peer.loop.commitments_ahead`), on a real chain.

The collector takes a set read ahead only when it is provably the chain's whole set for the round (every member
of the snapshot has a commitment); otherwise it reads the chain as before. Checked here: the set handed over is
the chain's field for field, a commitment mined after a read is never left out, an own record that differs from
the chain's is refused, and a chain rollback discards what was read ahead."""
from __future__ import annotations

import json
import urllib.request
from types import SimpleNamespace

from consensus.commitment import NO_DP, Commitment
from peer.loop import commitments_ahead, reconcile
from peer.loop.commitments_ahead import CommitmentsAhead, read_commitments, reader_for

NEVER = 3600.0  # s between the watch's own reads: only the first read and wake-ups (own commit) happen


def _commit(member, r: int, i: int) -> Commitment:
    """Member `member` commits in round r; its commitment as the peer builds it from its own mined commit."""
    h, cid = bytes([i + 1]) * 32, f"bafkreiupdate{r}x{i}"
    receipt = member.commit(r, h, cid, 100 + i)
    return Commitment(member.account.address, h, cid, 100 + i, r, NO_DP, 0, receipt.block_number, receipt.tx_hash)


def _watch(fed, me: str) -> CommitmentsAhead:
    members = [m.account.address for m in fed.members]
    return CommitmentsAhead(1, reader_for(fed.ledger), members, me=me, fast=NEVER, slow=NEVER).start()


def test_the_lean_read_gives_the_bindings_records(make_federation):
    fed = make_federation(4)
    fed.members[2].commit(1, b"\x07" * 32, "bafkreidp", 2**32 - 1, 1_250_000, 10**12)  # with DP, the largest count
    for i in (3, 0):
        _commit(fed.members[i], 1, i)
    fed.advance(101)  # past the commit deadline (not all committed): the vote window
    fed.members[1].vote(1, b"\xa1" * 32, "bafkreiagg", b"\x00" * 32, "bafkreirewards", [])  # other events beside
    reader = reader_for(fed.ledger)
    assert read_commitments(reader, 1) == fed.ledger.commitments(1) and len(fed.ledger.commitments(1)) == 3
    assert read_commitments(reader, 2) == fed.ledger.commitments(2) == []


def test_the_last_committer_reads_nothing_after_its_commit_and_gets_the_chains_set(make_federation):
    fed = make_federation(4)
    me = fed.members[0]
    for i, m in enumerate(fed.members[1:], 1):
        _commit(m, 1, i)
    watch = _watch(fed, me.account.address)
    try:
        assert watch.complete() is None, "the own commitment is still missing"
        watch.own_committed(_commit(me, 1, 0))
        got = watch.complete()
        assert got == fed.ledger.commitments(1), "the chain's set, in canonical order, field for field"
        assert watch.reads == 1, "nothing read after the own commit"
    finally:
        watch.close()


def test_a_commitment_mined_after_a_read_is_never_left_out(make_federation):
    fed = make_federation(4)
    me, late = fed.members[0], fed.members[3]
    for i, m in enumerate(fed.members[1:3], 1):
        _commit(m, 1, i)
    watch = _watch(fed, me.account.address)
    try:
        assert watch.complete() is None
        _commit(late, 1, 3)  # after the watch's read: its set lacks this member
        watch.own_committed(_commit(me, 1, 0))  # not complete with it: the watch reads again
        got = watch.complete()
        assert got == fed.ledger.commitments(1) and late.account.address in {c.member for c in got}
        assert watch.reads == 2
    finally:
        watch.close()


def test_a_member_that_never_commits_leaves_the_read_to_the_collector(make_federation):
    fed = make_federation(3)
    me = fed.members[0]
    _commit(fed.members[1], 1, 1)
    watch = _watch(fed, me.account.address)
    try:
        watch.own_committed(_commit(me, 1, 0))
        assert watch.complete() is None, "member 2 may still commit: the collector reads the chain"
    finally:
        watch.close()


def test_an_own_record_that_differs_from_the_chains_is_refused(make_federation):
    fed = make_federation(3)
    mine = [_commit(m, 1, i) for i, m in enumerate(fed.members)][0]
    watch = _watch(fed, mine.member)
    try:
        assert watch.complete() == fed.ledger.commitments(1), "read with the own commitment in it"
        watch.own_committed(Commitment(mine.member, mine.update_hash, "bafkreiother", mine.num_samples, 1,
                                       NO_DP, 0, mine.block_number, mine.tx_hash))
        assert watch.complete() is None
    finally:
        watch.close()


def _rpc(url: str, method: str, params: list) -> object:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())["result"]


def test_a_rollback_discards_what_was_read_ahead(make_federation, anvil):
    fed = make_federation(3)
    ledger = fed.members[0]
    ctx = SimpleNamespace(ledger=ledger, me=ledger.account.address, gossip=None, head_seen=None,
                          retry=lambda what, fn, round=None: fn(),
                          membership=SimpleNamespace(members={m.account.address: b"" for m in fed.members}))
    commitments_ahead.start_for(ctx, 1)
    assert reconcile.rolled_back(ctx) is False
    assert commitments_ahead.take_running(ctx, 1) is not None, "kept while the chain holds its blocks"
    commitments_ahead.start_for(ctx, 1)
    _commit(fed.members[1], 1, 1)
    assert reconcile.rolled_back(ctx) is False  # the head seen from here on: the block of that commit
    _rpc(anvil.rpc_url, "anvil_reorg", [1, []])  # that block replaced: the chain lost it
    assert reconcile.rolled_back(ctx) is True
    assert commitments_ahead.take_running(ctx, 1) is None, "the collector reads the chain afresh"
