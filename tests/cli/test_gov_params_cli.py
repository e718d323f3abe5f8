"""`fedledger gov propose params` against a governed federation on anvil: unset flags keep the values set for the
next round, the change shows in `gov list` / `show`, it applies from the next round, and every refusal (bounds,
infeasible or unknown rule, nothing to change, not a member) is one line."""
from __future__ import annotations

import json

from typer.testing import CliRunner

from fedledger.cli import app
from fedledger.errors import UserError
from helpers.governance import ETH, TEST_GOV, deploy_governed

runner = CliRunner()


def _run(g, argv: list[str], key: str | None = None):
    extra = ["--rpc", g.rpc_url, "--governor", g.governor.address] + (["--key", key] if key else [])
    return runner.invoke(app, argv + extra)


def _ok(res) -> str:
    assert res.exit_code == 0 and res.exception is None, (res.output, res.exception)
    return res.output


def _refused(res, *words: str) -> str:
    assert isinstance(res.exception, UserError), (res.output, res.exception)
    message = res.exception.message
    assert "\n" not in message and all(w in message for w in words), message
    return message


def test_gov_propose_params_cli(anvil, dev_keys) -> None:
    g = deploy_governed(anvil.rpc_url, dev_keys, n=4, commit_period=300, vote_period=300)
    m = [a.private_key for a in g.accounts]
    propose = ["gov", "propose", "params"]
    _refused(_run(g, propose, m[0]), "nothing to change")
    _refused(_run(g, propose + ["--quorum-bps", "4000"], m[0]), "InvalidProposal", "quorumBps")
    _refused(_run(g, propose + ["--commit-period", "5"], m[0]), "InvalidProposal", "commitPeriod")
    _refused(_run(g, propose + ["--vote-period", str(31 * 86400)], m[0]), "InvalidProposal", "votePeriod")
    _refused(_run(g, propose + ["--reward-per-round", str(2**96 / ETH)], m[0]), "InvalidProposal", "rewardPerRound")
    _refused(_run(g, propose + ["--rule", "krum", "--f", "1"], m[0]), "RuleInfeasible", "krum")  # needs 5
    _refused(_run(g, propose + ["--f", "4"], m[0]), "RuleInfeasible")  # f < n
    _refused(_run(g, propose + ["--rule", "nope"], m[0]), "UnknownRule", "nope")
    _refused(_run(g, propose + ["--f", "-1"], m[0]), "negative")
    _refused(_run(g, propose + ["--reward-per-round", "2"], dev_keys[0].private_key), "NotMember")

    out = _ok(_run(g, propose + ["--reward-per-round", "2.5", "--vote-period", "120", "--rule", "median"], m[1]))
    assert "proposal 1 opened" in " ".join(out.split())
    [row] = json.loads(_ok(_run(g, ["gov", "list", "--json"])))
    assert row["kind"] == "round_params" and "rule median" in row["what"] and "reward 2.5 ETH" in row["what"]
    assert "commit 300 s" in row["what"]  # unset: kept
    for k in m[:3]:
        _ok(_run(g, ["gov", "vote", "1"], k))
    g.advance(TEST_GOV.voting_period + TEST_GOV.execution_delay + 1)
    _ok(_run(g, ["gov", "execute", "1"], m[3]))
    assert "median" in _ok(_run(g, ["gov", "show", "1"]))
    p1, p2 = g.ledger.params_for_round(1), g.ledger.params_for_round(2)
    assert (p1.rule, p1.vote_period, p1.reward_per_round_wei) == ("fedavg", 300, ETH)
    assert (p2.rule, p2.f, p2.commit_period, p2.vote_period, p2.reward_per_round_wei) == (
        "median", 1, 300, 120, 5 * ETH // 2)
