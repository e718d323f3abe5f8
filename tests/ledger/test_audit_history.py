"""The auditor's history model and its chain-free checks, on hand-written event logs (no node, no IPFS)."""
from __future__ import annotations

import pytest

from ledger_tools.audit.history import LedgerHistory, RoundRange, RoundStatus
from ledger_tools.audit.queries import peer_history
from ledger_tools.audit.verification import Severity, SignedClaim, equivocation_findings, verify_round
from ledger_tools.chain import NO_DP, LedgerParams
from ledger_tools.ledger_cache import LedgerEvent

A, B, C = "0x" + "0a" * 20, "0x" + "0b" * 20, "0x" + "0c" * 20
AUDITOR = "0x" + "ad" * 20
GENESIS = "0x" + "11" * 32
PARAMS = LedgerParams("fedavg", 0, 0, 5000, 3600, 3600, 10**16, b"\x01" * 32, bytes.fromhex(GENESIS[2:]),
                      "bafkgenesis", 20, 1000, 0)


def h32(byte: int) -> str:
    return "0x" + f"{byte:02x}" * 32


def ev(block: int, name: str, gas: int = 0, **args) -> LedgerEvent:
    return LedgerEvent(block, 0, f"0x{block:064x}", name, args, gas, A)


def commit(block, r, member, byte, eps=2_500_000):
    return ev(block, "Committed", 50_000, round=r, member=member, updateHash=h32(byte), cid=f"bafk{byte}",
              numSamples=10, epsilonE6=eps, deltaE18=10**13)


def vote(block, r, member, digest, weight=1_000_000):
    return ev(block, "Voted", 100_000, round=r, member=member, digest=digest, aggregateHash=h32(0xAA),
              aggregateCid="bafkmodel1", rewardsRoot=h32(0xBB), rewardsCid="bafktree1", excluded=[], weight=weight)


def finalized(block, r, digest=h32(0xDD)):
    return ev(block, "RoundFinalized", round=r, digest=digest, aggregateHash=h32(0xA0 + r),
              aggregateCid=f"bafkmodel{r}", rewardsRoot=h32(0xBB), rewardsCid="bafktree1", excluded=[],
              weightFor=2_000_000, totalWeight=3_000_000, pool=10**16)


def log_with_failed_round(*extra: LedgerEvent) -> list[LedgerEvent]:
    """Round 1 finalized, round 2 failed after all three members committed, round 3 open."""
    return [
        *(ev(1, "MemberAdmitted", member=m, encKey=h32(i), weight=1_000_000, totalWeight=(i + 1) * 10**6)
          for i, m in enumerate((A, B, C))),
        ev(1, "AuditorRegistered", auditor=AUDITOR, encKey=h32(0xEE)),
        ev(1, "Funded", **{"from": A, "amount": 10**18, "balance": 10**18}),
        ev(1, "RoundOpened", round=1, start=100, commitDeadline=3700, voteDeadline=7300),
        commit(2, 1, B, 0x21), commit(3, 1, A, 0x22, eps=NO_DP), commit(4, 1, C, 0x23),
        vote(5, 1, A, h32(0xDD)), vote(6, 1, C, h32(0xCC), weight=500_000), vote(7, 1, B, h32(0xDD)),
        finalized(7, 1),
        ev(7, "RoundOpened", round=2, start=200, commitDeadline=3800, voteDeadline=7400),
        commit(8, 2, A, 0x31), commit(9, 2, B, 0x32), commit(10, 2, C, 0x33),
        ev(20, "RoundFailed", 30_000, round=2, closedBy=C),
        ev(20, "RoundOpened", round=3, start=9000, commitDeadline=12600, voteDeadline=16200),
        ev(21, "WeightUpdated", member=A, oldWeight=1_000_000, newWeight=900_000, voteRound=1, rewarded=True,
           missedRounds=1),
        ev(22, "SomethingNew", whatever=1),  # an event of a later contract version: ignored
        *extra,
    ]


def history(*extra: LedgerEvent) -> LedgerHistory:
    return LedgerHistory.from_events(log_with_failed_round(*extra), PARAMS, chain_id=31337, address=AUDITOR)


def test_from_events_rebuilds_rounds_members_and_gas():
    h = history(ev(23, "Claimed", 70_000, account=B, rounds=[1], amounts=[4 * 10**15], total=4 * 10**15))
    assert list(h.members) == [A, B, C] and h.auditors == {AUDITOR: bytes.fromhex("ee" * 32)} and h.funded == 10**18
    assert [h.rounds[r].status for r in (1, 2, 3)] == [RoundStatus.FINALIZED, RoundStatus.FAILED, RoundStatus.OPEN]
    r1, r2 = h.rounds[1], h.rounds[2]
    assert [c.member for c in r1.commits] == [B, A, C]  # chain order; canonical order is the verifier's job
    assert r1.commitment_of(A.upper().replace("0X", "0x")).epsilon is None  # NO_DP, found case-insensitively
    assert r1.commitment_of(B).epsilon == 2.5 and r1.commitment_of(B).delta == pytest.approx(1e-5)
    assert r1.gas_used == 3 * 50_000 + 3 * 100_000
    assert list(r1.votes_per_digest().items()) == [(bytes.fromhex("dd" * 32), (2, 2_000_000)),
                                                   (bytes.fromhex("cc" * 32), (1, 500_000))]
    assert r1.finalization.aggregate_hash == bytes.fromhex("a1" * 32) and r1.finalization.pool_wei == 10**16
    assert r2.finalization is None and r2.failed_by == C and r2.gas_used == 3 * 50_000 + 30_000
    assert (h.rounds[3].start, h.rounds[3].vote_deadline) == (9000, 16200)
    # Round 3 starts from round 1's model: the failed round 2 kept it.
    assert h.model_before(3) == (1, bytes.fromhex("a1" * 32), "bafkmodel1")
    assert h.model_before(1) == (0, bytes.fromhex(GENESIS[2:]), "bafkgenesis")
    assert h.weights[A] == [(1, 1_000_000), (21, 900_000)]
    assert h.claimed_rounds(B.upper().replace("0X", "0x")) == {1: 4 * 10**15} and h.claims_of_round(2) == []
    assert h.round_numbers(RoundRange.parse("2..")) == [2, 3]


def test_peer_history_counts_agreement_exclusion_and_privacy():
    h = history()
    ph = peer_history(h, C)
    assert (ph.commits, ph.votes, ph.agreements) == (2, 1, 0)  # C voted another digest in round 1
    assert [r.round for r in ph.rounds] == [1, 2] and ph.epsilon_total == pytest.approx(5.0)
    assert peer_history(h, A).epsilon_total == pytest.approx(2.5)  # round 1 without DP
    stranger = peer_history(h, "0x" + "99" * 20)
    assert not stranger.is_member and stranger.rounds == ()


def test_failed_round_is_checked_for_finalization_and_claims():
    clean = history()
    result, model = verify_round(clean, 2, store=None, unseal=None)  # nothing to fetch for a failed round
    assert (result.status, result.verified, model) == (RoundStatus.FAILED, True, None)
    assert not result.findings

    paid = history(ev(30, "Claimed", account=B, rounds=[2], amounts=[5], total=5))
    result, _ = verify_round(paid, 2, store=None, unseal=None)
    assert result.verified is False
    (finding,) = result.findings
    assert (finding.severity, finding.kind, finding.peer) == (Severity.MISMATCH, "claim-on-unfinalized-round", B)

    both = history(finalized(31, 2))  # a finalization after the round was closed as failed
    result, _ = verify_round(both, 2, store=None, unseal=None)
    assert result.verified is False and [f.kind for f in result.findings] == ["failed-but-finalized"]


def test_signed_envelope_contradicting_the_commitment_is_equivocation():
    h = history()
    same = SignedClaim(1, B, bytes.fromhex("21" * 32), "bafk33", "same.env")
    other = SignedClaim(1, A, bytes.fromhex("99" * 32), "bafkother", "a.env")
    findings = equivocation_findings(h, [same, other])
    assert [(f.round, f.kind, f.peer) for f in findings] == [(1, "equivocation", A)]
    assert "a.env" in findings[0].detail and "0x22" in findings[0].detail
    two = equivocation_findings(h, [same, SignedClaim(1, B, bytes.fromhex("98" * 32), "bafkx", "b2.env")])
    assert {f.peer for f in two} == {B} and len(two) == 2  # two signed versions + one contradicts the chain
