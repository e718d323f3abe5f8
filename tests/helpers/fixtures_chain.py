"""Chain fixtures: one anvil per test session on a free port, a fresh federation deployment per test.

Loaded by tests/conftest.py as a pytest plugin. Helpers (`Federation`, `oz_tree`) are importable:
`from helpers.fixtures_chain import ...`.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from consensus.merkle import RewardTree
from devnet.anvil import AnvilProcess, DevAccount, dev_accounts, extra_accounts, increase_time, start_anvil
from devnet.deploy import deploy_federation
from ledger_tools.chain import FederationLedger
from ledger_tools.config import FederationConfig

ETH = 10**18
AGG = b"\xa1" * 32
CID_AGG = "bafkreiaggregate"
CID_REWARDS = "bafkreirewards"


def oz_tree(round_: int, amounts: Mapping[str, int]) -> RewardTree:
    """The protocol's reward tree (OpenZeppelin StandardMerkleTree layout) for `amounts` (zero amounts left out)."""
    return RewardTree.build(round_, list(amounts), list(amounts.values()))


@dataclass
class Federation:
    """A freshly deployed federation on the session anvil, with one signing binding per member."""

    rpc_url: str
    owner: FederationLedger
    members: list[FederationLedger]
    accounts: list[DevAccount]
    config: FederationConfig
    outsiders: list[DevAccount] = field(default_factory=list)

    @property
    def ledger(self) -> FederationLedger:
        return self.owner

    def member(self, address: str) -> FederationLedger:
        return next(m for m in self.members if m.account.address == address)

    def advance(self, seconds: int) -> None:
        increase_time(self.rpc_url, seconds)

    def commit_all(self, round_: int, members: Sequence[FederationLedger] | None = None) -> list[int]:
        return [m.commit(round_, bytes([i + 1]) * 32, f"bafkreiupdate{round_}x{i}", 100 + i).gas_used
                for i, m in enumerate(self.members if members is None else members)]

    def run_round(self, round_: int, rewards: Mapping[str, int] | None = None, *, aggregate: bytes = AGG,
                  voters: Sequence[FederationLedger] | None = None, excluded: Sequence[str] = ()) -> RewardTree:
        """Everyone commits, then `voters` (default: all, stopping at finalization) vote the same digest."""
        self.commit_all(round_)
        tree = oz_tree(round_, rewards or {})
        for m in voters if voters is not None else self.members:
            if m.vote(round_, aggregate, CID_AGG, tree.root, CID_REWARDS, sorted(excluded, key=lambda a: int(a, 16))
                      ).finalized:
                break
        return tree


def _config(accounts: Sequence[DevAccount], weights: Sequence[int] | None = None, **overrides: Any) -> FederationConfig:
    weights = weights or [1_000_000] * len(accounts)
    data: dict[str, Any] = {
        "members": [{"address": a.address, "enc_key": "0x" + bytes([i + 1] * 32).hex(), "weight": w}
                    for i, (a, w) in enumerate(zip(accounts, weights))],
        "rule": "fedavg",
        "f": 1,
        "quorum_bps": 5000,
        "commit_period": 100,
        "vote_period": 100,
        "reward_per_round_wei": ETH,
        "funding_wei": 20 * ETH,
        "model_spec_hash": "0x" + "5e" * 32,
        "genesis_model_hash": "0x" + "9e" * 32,
        "genesis_model_cid": "bafkreigenesis",
        "alpha_bps": 1000,
    }
    data.update(overrides)
    return FederationConfig.from_data(data)


@pytest.fixture(scope="session")
def anvil(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AnvilProcess]:
    """A real anvil devnet on a free loopback port for the whole test session."""
    proc = start_anvil(log_path=tmp_path_factory.mktemp("anvil") / "anvil.log")
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def dev_keys() -> list[DevAccount]:
    """anvil's 10 funded accounts; [0] deploys (owner), [1:] are members/outsiders."""
    return dev_accounts()


@pytest.fixture
def make_federation(anvil: AnvilProcess, dev_keys: list[DevAccount]) -> Callable[..., Federation]:
    """Factory: `make_federation(n=5, weights=None, **config_overrides)` deploys a fresh federation of n members."""

    def make(n: int = 5, **overrides: Any) -> Federation:
        pool = dev_keys[1:]
        if n > len(pool) - 2:
            pool = pool + extra_accounts(anvil.rpc_url, n + 2 - len(pool), seed="fixtures")
        accounts, outsiders = pool[:n], pool[n:]
        config = _config(accounts, **overrides)
        owner = deploy_federation(anvil.rpc_url, config, dev_keys[0].private_key)
        members = [owner.with_account(a.private_key) for a in accounts]
        return Federation(anvil.rpc_url, owner, members, list(accounts), config, list(outsiders))

    return make


@pytest.fixture
def federation(make_federation: Callable[..., Federation]) -> Federation:
    """5 members, equal weights, quorum > 50 %, 1 ETH per round, 20 ETH funded, 100 s commit + 100 s vote."""
    return make_federation()
