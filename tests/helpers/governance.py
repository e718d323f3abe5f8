"""Governed-federation fixture pieces for the governance tests: deploy ledger + governor on the session anvil,
sign gossip envelopes as a member, pass a proposal by vote."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from eth_account import Account

from devnet.anvil import DevAccount, increase_time
from devnet.deploy import deploy_governed_federation
from helpers.fixtures_chain import AGG, CID_AGG, CID_REWARDS, _config, oz_tree
from ledger_tools.chain import FederationLedger
from ledger_tools.chain.governance import FederationGovernor, GovParams
from peer.net.envelope import Envelope
from peer.net.envelope_proof import EnvelopeProof

ETH = 10**18
TEST_GOV = GovParams(min_stake=ETH, pass_bps=5000, quorum_bps=5000, voting_period=60, execution_delay=30,
                     execution_window=120, withdraw_delay=300, reporter_share_bps=1000, slash_bps=10_000)


@dataclass
class Governed:
    rpc_url: str
    ledger: FederationLedger  # signs as the deployer
    governor: FederationGovernor  # signs as the deployer
    accounts: list[DevAccount]
    outsiders: list[DevAccount]
    gov: list[FederationGovernor] = field(default_factory=list)  # one per member
    members: list[FederationLedger] = field(default_factory=list)

    def advance(self, seconds: int) -> None:
        increase_time(self.rpc_url, seconds)

    def gov_as(self, account: DevAccount) -> FederationGovernor:
        return self.governor.with_account(account.private_key)

    def pass_proposal(self, proposal_id: int, voters: Sequence[FederationGovernor] | None = None) -> None:
        """Everyone (or `voters`) votes for, then wait past the vote and the execution delay, and execute."""
        for g in self.gov if voters is None else voters:
            g.vote(proposal_id, True)
        self.advance(TEST_GOV.voting_period + TEST_GOV.execution_delay + 1)
        self.gov[0].execute(proposal_id)


def deploy_governed(rpc_url: str, dev_keys: Sequence[DevAccount], n: int = 4, gov: GovParams = TEST_GOV,
                    **overrides: Any) -> Governed:
    pool = list(dev_keys[1:])
    accounts, outsiders = pool[:n], pool[n:]
    config = _config(accounts, **overrides)
    d = deploy_governed_federation(rpc_url, config, dev_keys[0].private_key, gov)
    out = Governed(rpc_url, d.ledger, d.governor, list(accounts), outsiders)
    out.gov = [d.governor.with_account(a.private_key) for a in accounts]
    out.members = [d.ledger.with_account(a.private_key) for a in accounts]
    return out


def envelope(fed: Governed | FederationLedger, account: DevAccount, round_: int, update_hash: bytes, *,
             federation: str | None = None, chain_id: int | None = None, keys: bytes = b"\x07" * 200) -> bytes:
    """The wire bytes of a signed gossip envelope, as a peer would gossip them."""
    ledger = fed.ledger if isinstance(fed, Governed) else fed
    return Envelope.create(
        Account.from_key(account.private_key), federation=federation or ledger.address,
        chain_id=ledger.chain_id if chain_id is None else chain_id, round=round_, update_hash=update_hash,
        cid="bafkreiupdate", wrapped_keys=keys, blob_sha256=b"\x33" * 32, blob_size=1234,
    ).to_bytes()


def proof(fed: Governed | FederationLedger, account: DevAccount, round_: int, update_hash: bytes,
          **kw: Any) -> tuple:
    """The `SignedEnvelope` tuple a slash submits for such an envelope (its signed header)."""
    return EnvelopeProof.of(Envelope.from_bytes(envelope(fed, account, round_, update_hash, **kw))).as_abi()


def staked_federation(rpc_url: str, dev_keys: Sequence[DevAccount]) -> Governed:
    """4 bootstrap members and a fifth (`outsiders[0]`) admitted by vote with a 2 ETH stake; round 1 (the fifth does
    not count in it: it was admitted while it was open) finalized by the four, so round 2 is open with all five."""
    g = deploy_governed(rpc_url, dev_keys)
    cand = g.outsiders[0]
    g.gov_as(cand).stake(2 * ETH)
    g.pass_proposal(g.gov[0].propose_admit(cand.address, b"\x42" * 32, 1_000_000, 2 * ETH).proposal_id)
    for i, m in enumerate(g.members):
        m.commit(1, bytes([i + 1]) * 32, f"bafkreiupdate1x{i}", 100)
    root = oz_tree(1, {}).root
    assert any(m.vote(1, AGG, CID_AGG, root, CID_REWARDS, []).finalized for m in g.members)
    return g
