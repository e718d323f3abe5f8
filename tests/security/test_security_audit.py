"""Hostile cases for the auditor and the contributor, on an honest one-round ledger built in memory.

The ledger is a hand-written event log whose round 1 was derived with the real pieces (canonical codec, seal,
`compute_round_outcome`, reward tree JSON, real IPFS CIDs in an in-memory store), so `verify_round` passes on it;
each test then adds one hostile thing: a claim that does not match the published tree, a reward tree that does
not rebuild the finalized root, envelopes as equivocation "evidence" from outsiders, other chains or forgers.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from eth_account import Account
from rich.console import Console

import consensus
from consensus.commitment import Commitment, CommittedUpdate
from consensus.round_outcome import compute_round_outcome
from fedledger.audit_keys import load_evidence
from ledger_tools.audit.history import LedgerHistory
from ledger_tools.audit.rewards import RewardTreeError, load_reward_tree, rewards_of
from ledger_tools.audit.verification import Severity, verify_history, verify_round
from ledger_tools.blobstore import InMemoryBlobStore
from ledger_tools.chain import NO_DP, LedgerParams
from ledger_tools.ledger_cache import LedgerEvent
from peer.crypto.seal import seal, unseal
from peer.net.envelope import Envelope

FEDERATION = Account.from_key(b"\x7f" * 32).address  # any address: the contract's
CHAIN_ID = 31337
MEMBERS = [Account.from_key(bytes([i]) * 32) for i in (1, 2, 3)]
OUTSIDER = Account.from_key(b"\x09" * 32)
AUDITOR = Account.from_key(b"\x0a" * 32).address
AUDITOR_KEY = X25519PrivateKey.from_private_bytes(b"\x0b" * 32)
POOL = 9 * 10**15
SHAPES = {"w": (3, 2), "b": (3,)}


def _raw(key: X25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _ev(block: int, name: str, **args) -> LedgerEvent:
    return LedgerEvent(block, 0, f"0x{block:064x}", name, args, 0, FEDERATION)


def _publish(store, tree: "consensus.RewardTree") -> str:
    return store.add(tree.to_json().encode())


def _tensors(rng, scale=1.0):
    return {k: (rng.standard_normal(s) * scale).astype(np.float32) for k, s in SHAPES.items()}


class OneRound:
    """Round 1 of a 3-member fedavg federation, honestly finalized; `events` + `store` are the whole ledger."""

    def __init__(self) -> None:
        rng = np.random.default_rng(7)
        self.store = InMemoryBlobStore()
        genesis = consensus.encode(_tensors(rng))
        self.genesis_hash = hashlib.sha256(genesis).digest()
        genesis_cid = self.store.add(genesis)
        self.params = LedgerParams("fedavg", 0, 0, 5000, 3600, 3600, POOL, b"\x01" * 32, self.genesis_hash,
                                   genesis_cid, 20, 1000, 0)
        keys = [X25519PrivateKey.from_private_bytes(bytes([0x20 + i]) * 32) for i in range(3)]
        recipients = {m.address: _raw(k) for m, k in zip(MEMBERS, keys)} | {AUDITOR: _raw(AUDITOR_KEY)}
        self.events = [_ev(1, "MemberAdmitted", member=m.address, encKey="0x" + _raw(k).hex(), weight=10**6,
                           totalWeight=(i + 1) * 10**6) for i, (m, k) in enumerate(zip(MEMBERS, keys))]
        self.events += [_ev(1, "AuditorRegistered", auditor=AUDITOR, encKey="0x" + _raw(AUDITOR_KEY).hex()),
                        _ev(1, "RoundOpened", round=1, start=100, commitDeadline=3700, voteDeadline=7300)]
        updates = []
        for i, m in enumerate(MEMBERS):
            update = consensus.encode(_tensors(rng, 0.01))
            sealed = seal(update, recipients, federation=FEDERATION, round=1, sender=m.address)
            h = hashlib.sha256(update).digest()
            self.events.append(_ev(2 + i, "Committed", round=1, member=m.address, updateHash="0x" + h.hex(),
                                   cid=self.store.add(sealed), numSamples=10 + i, epsilonE6=NO_DP, deltaE18=0))
            updates.append(CommittedUpdate(Commitment(m.address, h, "", 10 + i), update))
        out = compute_round_outcome(round=1, previous_model=genesis, updates=updates, rule="fedavg", rule_param=0,
                                    f=0, reward_pool=POOL, scale_bits=20)
        self.outcome = out
        self.tree_cid = _publish(self.store, out.reward_tree)
        model_cid = self.store.add(out.new_model)
        # two of the three members vote the outcome (a finalization without votes is itself a tally mismatch)
        self.events += [_ev(5 + i, "Voted", round=1, member=m.address, digest="0x" + out.digest.hex(),
                            aggregateHash="0x" + out.aggregate_hash.hex(), aggregateCid=model_cid,
                            rewardsRoot="0x" + out.rewards_root.hex(), rewardsCid=self.tree_cid,
                            excluded=list(out.excluded), weight=10**6, late=False) for i, m in enumerate(MEMBERS[:2])]
        self.events.append(
            _ev(
                10,
                "RoundFinalized",
                round=1,
                digest="0x" + out.digest.hex(),
                aggregateHash="0x" + out.aggregate_hash.hex(),
                aggregateCid=model_cid,
                rewardsRoot="0x" + out.rewards_root.hex(),
                rewardsCid=self.tree_cid,
                excluded=list(out.excluded),
                weightFor=2 * 10**6,
                totalWeight=3 * 10**6,
                pool=POOL,
            )
        )

    def history(self, *extra: LedgerEvent) -> LedgerHistory:
        return LedgerHistory.from_events([*self.events, *extra], self.params, chain_id=CHAIN_ID, address=FEDERATION)

    def amount(self, account: str) -> int:
        return self.outcome.reward_tree.amount_of(account)


def _auditor_unseal(blob: bytes, sender: str, round_: int) -> bytes:
    return unseal(blob, AUDITOR, AUDITOR_KEY, federation=FEDERATION, round=round_, sender=sender)


@pytest.fixture(scope="module")
def ledger() -> OneRound:
    return OneRound()


def _claim(block: int, account: str, amount: int, round_: int = 1) -> LedgerEvent:
    return _ev(block, "Claimed", account=account, rounds=[round_], amounts=[amount], total=amount)


def test_honest_round_verifies(ledger):
    honest = ledger.history(_claim(20, MEMBERS[0].address, ledger.amount(MEMBERS[0].address)))
    result, model = verify_round(honest, 1, store=ledger.store, unseal=_auditor_unseal)
    assert result.verified is True and not result.findings
    assert model == ledger.outcome.new_model


def test_claim_of_another_amount_than_the_tree_pays_is_a_mismatch(ledger):
    """The contract checks claims by Merkle proof; if a claim ever disagrees with the published tree (a contract
    bug, a root-prefix collision) the auditor names the account and round."""
    a, b = MEMBERS[0].address, MEMBERS[1].address
    over = ledger.history(_claim(20, a, ledger.amount(a) + 1), _claim(21, b, ledger.amount(b)))
    result, _ = verify_round(over, 1, store=ledger.store, unseal=_auditor_unseal)
    assert result.verified is False
    (finding,) = result.findings
    assert (finding.severity, finding.kind, finding.peer) == (Severity.MISMATCH, "claim-amount", a)
    assert f"claimed {ledger.amount(a) + 1} wei, the reward tree pays {ledger.amount(a)} wei" in finding.detail

    stranger = ledger.history(_claim(20, OUTSIDER.address, 5))  # paid although the tree pays it nothing
    result, _ = verify_round(stranger, 1, store=ledger.store, unseal=_auditor_unseal)
    assert [(f.kind, f.peer) for f in result.findings] == [("claim-amount", OUTSIDER.address)]


# ------------------------------------------------------------------------------ reward tree from IPFS


def test_reward_tree_must_rebuild_the_finalized_root(ledger):
    store, out = ledger.store, ledger.outcome
    root = out.rewards_root
    assert load_reward_tree(store, 1, ledger.tree_cid, root).root == root
    # a tree paying someone else (published by a lying peer) does not rebuild the chain's root
    forged = consensus.RewardTree.build(1, [OUTSIDER.address], [POOL])
    forged_cid = _publish(store, forged)
    with pytest.raises(RewardTreeError, match="the chain finalized"):
        load_reward_tree(store, 1, forged_cid, root)
    # the honest tree of another round, replayed: leaves bind the round
    replay = consensus.RewardTree.build(2, list(out.peers), list(out.amounts))
    replay_cid = _publish(store, replay)
    with pytest.raises(RewardTreeError, match="is for round 2"):
        load_reward_tree(store, 1, replay_cid, root)
    # the honest dump with one amount raised but the original nodes kept: inconsistent, refused
    doc = json.loads(out.reward_tree.to_json())
    doc["values"][0]["value"][2] = str(int(doc["values"][0]["value"][2]) + 1)
    with pytest.raises(RewardTreeError, match="nodes do not match"):
        load_reward_tree(store, 1, store.add(json.dumps(doc).encode()), root)
    # malformed JSON, a missing tree, no CID for a non-empty root
    with pytest.raises(RewardTreeError, match="malformed"):
        load_reward_tree(store, 1, store.add(b'{"format": "standard-v1", "tree": [1]'), root)
    with pytest.raises(RewardTreeError, match="cannot fetch"):
        load_reward_tree(store, 1, InMemoryBlobStore().add(b"never stored"), root)
    with pytest.raises(RewardTreeError, match="no reward tree CID"):
        load_reward_tree(store, 1, "", root)
    assert not load_reward_tree(store, 1, "", b"\0" * 32).values


def test_contributor_gets_no_proof_from_a_tree_that_contradicts_the_chain(ledger):
    """`rewards show/claim` build proofs only from a tree that matches the finalized root."""
    events = list(ledger.events)
    fin = events[-1]
    forged = consensus.RewardTree.build(1, [OUTSIDER.address], [POOL])
    events[-1] = dataclasses.replace(fin, args={**fin.args, "rewardsCid": _publish(ledger.store, forged)})
    h = LedgerHistory.from_events(events, ledger.params, chain_id=CHAIN_ID, address=FEDERATION)
    view = rewards_of(h, ledger.store, OUTSIDER.address)
    assert view.entries == () and [p.round for p in view.problems] == [1]
    assert "the chain finalized" in view.problems[0].reason
    honest = rewards_of(ledger.history(), ledger.store, MEMBERS[0].address)
    (entry,) = honest.entries
    assert consensus.verify_proof(list(entry.proof), ledger.outcome.rewards_root,
                                  consensus.reward_leaf(1, MEMBERS[0].address, entry.amount))


# ------------------------------------------------------------------------------ auditor's --evidence loader


def _envelope(account, *, update_hash: bytes, federation=FEDERATION, chain_id=CHAIN_ID, round_=1,
              timestamp=1) -> bytes:
    return Envelope.create(account, federation=federation, chain_id=chain_id, round=round_, update_hash=update_hash,
                           cid="bafkreiother", wrapped_keys=b"", blob_sha256=b"\x01" * 32, blob_size=1,
                           timestamp=timestamp).to_bytes()


def test_evidence_counts_only_signed_member_envelopes_of_this_federation_and_chain(ledger, tmp_path, capsys):
    cheat = MEMBERS[1]
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    good = _envelope(cheat, update_hash=b"\x42" * 32)
    (evidence / "a-member.env").write_bytes(good)
    (evidence / "b-duplicate.env").write_bytes(good)  # the same signed envelope saved twice
    (evidence / "c-other-chain.env").write_bytes(_envelope(cheat, update_hash=b"\x43" * 32, chain_id=1))
    (evidence / "d-other-federation.env").write_bytes(
        _envelope(cheat, update_hash=b"\x44" * 32, federation=OUTSIDER.address))
    (evidence / "e-non-member.env").write_bytes(_envelope(OUTSIDER, update_hash=b"\x45" * 32))
    forged = bytearray(_envelope(MEMBERS[0], update_hash=b"\x46" * 32))  # member 0's envelope, altered
    forged[40] ^= 1
    (evidence / "f-forged.env").write_bytes(bytes(forged))
    (evidence / "g-malformed.env").write_bytes(good[:-1])
    h = ledger.history()

    claims = load_evidence(evidence, h, Console())
    assert [(c.source, c.sender, c.update_hash) for c in claims] == [("a-member.env", cheat.address, b"\x42" * 32)]
    out = " ".join(capsys.readouterr().out.split())
    ignored = dict(part.split(": ", 1) for part in out.split("ignoring evidence ")[1:])
    assert {name: why.strip() for name, why in ignored.items()} == {
        "b-duplicate.env": "duplicate of an envelope already read",
        "c-other-chain.env": f"envelope of federation {FEDERATION} on chain 1, not this one",
        "d-other-federation.env": f"envelope of federation {OUTSIDER.address} on chain {CHAIN_ID}, not this one",
        "e-non-member.env": f"sender {OUTSIDER.address} is not a member of the federation",
        "f-forged.env": ignored["f-forged.env"].strip(),
        "g-malformed.env": "truncated message: signature needs 65 bytes at offset 160",
    }
    assert "signed by" in ignored["f-forged.env"]  # recovers to someone other than the claimed sender

    report = verify_history(h, store=ledger.store, unseal=_auditor_unseal, evidence=claims)
    assert report.ok  # evidence is a warning: the finalized outcome stands
    equivocations = [f for f in report.findings if f.kind == "equivocation"]
    assert [(f.round, f.peer, f.severity) for f in equivocations] == [(1, cheat.address, Severity.WARNING)]


def test_a_replayed_envelope_from_another_chain_cannot_frame_a_member(ledger, tmp_path):
    """The same member, same contract address on another chain (a testnet deploy with the same deployer nonce):
    its honest envelopes there must not read as equivocation here."""
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    honest = MEMBERS[2]
    (evidence / "testnet.env").write_bytes(_envelope(honest, update_hash=b"\x99" * 32, chain_id=11155111))
    h = ledger.history()
    report = verify_history(h, store=ledger.store, unseal=_auditor_unseal,
                            evidence=load_evidence(evidence, h, Console()))
    assert report.ok and not report.findings


def test_models_are_checked_against_their_chain_hashes_not_their_cids(ledger):
    """The previous model and the finalized model are used/accepted only if their bytes hash to the chain's hash."""
    other_cid = ledger.store.add(b"some other model bytes")
    params = dataclasses.replace(ledger.params, genesis_model_cid=other_cid)
    h = LedgerHistory.from_events(ledger.events, params, chain_id=CHAIN_ID, address=FEDERATION)
    result, model = verify_round(h, 1, store=ledger.store, unseal=_auditor_unseal)
    assert result.verified is False and model is None
    assert [(f.kind, f.severity) for f in result.findings] == [("previous-model-unavailable", Severity.MISMATCH)]

    events = list(ledger.events)
    events[-1] = dataclasses.replace(events[-1], args={**events[-1].args, "aggregateCid": other_cid})
    h = LedgerHistory.from_events(events, ledger.params, chain_id=CHAIN_ID, address=FEDERATION)
    result, _ = verify_round(h, 1, store=ledger.store, unseal=_auditor_unseal)
    assert result.verified is False and [f.kind for f in result.findings] == ["aggregate-cid"]


def _with_commits(ledger, change) -> LedgerHistory:
    events = list(ledger.events)
    commits = [e for e in events if e.name == "Committed"]
    events = change(events, commits)
    return LedgerHistory.from_events(events, ledger.params, chain_id=CHAIN_ID, address=FEDERATION)


def test_copied_update_and_double_commit_on_record_are_named_never_a_crash(ledger):
    copier = MEMBERS[2].address
    # a member commits another member's update hash and CID (free-riding): flagged, and its blob names the
    # original sender, so it is unusable for the copier
    copied = _with_commits(ledger, lambda ev, c: [
        e for e in ev if e is not c[2]][:-1] + [_ev(5, "Committed", **{**c[0].args, "member": copier}), ev[-1]])
    result, _ = verify_round(copied, 1, store=ledger.store, unseal=_auditor_unseal)
    kinds = {(f.kind, f.peer) for f in result.findings}
    assert {("duplicate-update", copier), ("duplicate-update", MEMBERS[0].address)} <= kinds
    assert ("unseal-failed", copier) in kinds and result.verified is False  # the finalized outcome paid it
    assert "WrongSender" in next(f.detail for f in result.findings if f.kind == "unseal-failed")

    # the log records a member committing twice in one round (a broken ledger): a mismatch, not a ValueError
    twice = _with_commits(ledger, lambda ev, c: ev[:-1] + [_ev(6, "Committed", **c[1].args), ev[-1]])
    result, model = verify_round(twice, 1, store=ledger.store, unseal=_auditor_unseal)
    assert result.verified is False and model is None
    assert [(f.kind, f.severity, f.peer) for f in result.findings if f.kind == "double-commit"] == [
        ("double-commit", Severity.MISMATCH, MEMBERS[1].address)]
    report = verify_history(twice, store=ledger.store, unseal=_auditor_unseal)
    assert not report.ok
