"""A peer that finds its round back in the commit phase when it comes to vote waits for that phase to end and
votes, instead of abstaining (issue 14: an admission re-opened the commit phase on ledgers from before the round's
member count was fixed at open, and the round failed because peers abstained)."""
from __future__ import annotations

from types import SimpleNamespace

from ledger_tools.chain import RoundInfo, RoundStatus
from peer.loop import vote_step
from peer.loop.reconcile import OnChain
from peer.loop.state import Phase, RoundRecord


def _info(commits: int) -> RoundInfo:
    # open round 3 of 5 members: commit phase until 1000, votes until 2000
    return RoundInfo(3, RoundStatus.OPEN, 0, 1000, 2000, commits, 0, None, None, 5)


def _ctx(infos: list[RoundInfo]) -> SimpleNamespace:
    seen: list[RoundInfo] = []
    events: list[tuple] = []

    def round_info(r: int) -> RoundInfo:
        seen.append(infos[min(len(seen), len(infos) - 1)])
        return seen[-1]

    advanced: list[Phase] = []
    return SimpleNamespace(
        round_info=round_info, clock=lambda: 500.0, sleep=lambda s: events.append(("sleep", s)),
        cfg=SimpleNamespace(poll_interval=0.25), seen=seen, events=events, advanced=advanced,
        nlog=SimpleNamespace(event=lambda *a, **k: events.append(a)),
        state=SimpleNamespace(advance=lambda rec, phase, **k: advanced.append(phase)),
    )


def test_waits_while_the_commit_phase_runs_again():
    ctx = _ctx([_info(4), _info(4), _info(5)])  # one member short twice, then all five committed
    info, phase = vote_step.wait_commit_phase_again(ctx, 3)
    assert phase.name == "VOTE" and info.commit_count == 5
    assert [e for e in ctx.events if e[0] == "sleep"] == [("sleep", 0.25), ("sleep", 0.25)]
    assert any(e[1:3] == ("vote", "wait") for e in ctx.events if e[0] != "sleep")


def test_vote_on_round_votes_after_the_wait_instead_of_abstaining(monkeypatch):
    ctx = _ctx([_info(4), _info(5)])
    sent: list[object] = []
    monkeypatch.setattr(vote_step.reconcile, "vote", lambda ctx, r, rec: OnChain.MISSING)
    monkeypatch.setattr(vote_step.attack_hooks, "is_silent", lambda ctx: False)
    monkeypatch.setattr(vote_step, "collect", lambda ctx, r, rec: [])
    monkeypatch.setattr(vote_step, "aggregate", lambda ctx, r, rec, model, updates: "outcome")
    monkeypatch.setattr(vote_step, "send_vote", lambda ctx, r, rec, outcome: sent.append(outcome))
    vote_step.vote_on_round(ctx, 3, RoundRecord(3), b"model")
    assert sent == ["outcome"] and Phase.ABSTAINED not in ctx.advanced
