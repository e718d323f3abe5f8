"""Every deployment and admission bound reverts with a named error (InvalidParameter(<name>)), never a panic:
hostile values straight to the contract, past the config's own validation."""
from __future__ import annotations

import dataclasses

import pytest

from helpers.fixtures_chain import ETH
from ledger_tools import chain
from ledger_tools.chain import FederationLedger, LedgerParams, MemberInit

WEIGHT_ONE = 1_000_000
BASE = LedgerParams(
    rule="fedavg", rule_param=0, f=1, quorum_bps=5000, commit_period=100, vote_period=100,
    reward_per_round_wei=ETH, model_spec_hash=b"\x5e" * 32, genesis_model_hash=b"\x9e" * 32,
    genesis_model_cid="bafkreigenesis", scale_bits=20, alpha_bps=1000, sample_cap=0,
)


def _members(dev_keys, n: int = 3, weight: int = WEIGHT_ONE) -> list[MemberInit]:
    return [MemberInit(a.address, bytes([i + 1]) * 32, weight) for i, a in enumerate(dev_keys[1:1 + n])]


def _deploy(anvil, dev_keys, params: LedgerParams = BASE, members: list[MemberInit] | None = None):
    return FederationLedger.deploy(anvil.rpc_url, dev_keys[0].private_key, params,
                                   _members(dev_keys) if members is None else members)


@pytest.mark.parametrize(("field", "value", "name"), [
    ("rule", "", "rule"),
    ("rule", "x" * 65, "rule"),
    ("f", 3, "f"),                       # f must leave at least one honest member of the 3
    ("f", 2**16 - 1, "f"),
    ("quorum_bps", 4999, "quorumBps"),
    ("quorum_bps", 10_000, "quorumBps"),
    ("commit_period", 0, "commitPeriod"),
    ("vote_period", 0, "votePeriod"),
    ("commit_period", 2**24, "commitPeriod"),   # deadlines are 32-bit timestamps: no period may wrap them
    ("vote_period", 2**24, "votePeriod"),
    ("reward_per_round_wei", 2**96, "rewardPerRound"),
    ("genesis_model_hash", b"\0" * 32, "genesisModelHash"),
    ("genesis_model_cid", "", "genesisModelCid"),
    ("genesis_model_cid", "b" * 257, "genesisModelCid"),
    ("scale_bits", 31, "scaleBits"),
    ("scale_bits", 255, "scaleBits"),
    ("alpha_bps", 10_001, "alphaBps"),
])
def test_deployment_bounds(anvil, dev_keys, field, value, name):
    with pytest.raises(chain.InvalidParameter) as err:
        _deploy(anvil, dev_keys, dataclasses.replace(BASE, **{field: value}))
    assert err.value.name == name


def test_deployment_member_bounds(anvil, dev_keys):
    for members, name in [
        ([], "members"),
        (_members(dev_keys, weight=0), "totalWeight"),       # nobody could ever reach a quorum
        (_members(dev_keys, weight=2**64 - 1), "weight"),    # used to panic 0x11 on the total
        ([MemberInit("0x" + "00" * 20, b"\1" * 32)], "account"),
        ([MemberInit(dev_keys[1].address, b"\0" * 32)], "encKey"),
    ]:
        with pytest.raises(chain.InvalidParameter) as err:
            _deploy(anvil, dev_keys, dataclasses.replace(BASE, f=0), members)
        assert err.value.name == name
    with pytest.raises(chain.AlreadyMember):
        _deploy(anvil, dev_keys, members=_members(dev_keys) + _members(dev_keys)[:1])


def test_edge_values_are_accepted(anvil, dev_keys):
    ledger = _deploy(anvil, dev_keys, dataclasses.replace(
        BASE, rule="r" * 64, f=2, quorum_bps=9999, reward_per_round_wei=2**96 - 1, genesis_model_cid="b" * 256,
        scale_bits=30, alpha_bps=10_000, sample_cap=2**32 - 1,
    ), _members(dev_keys, weight=1000 * WEIGHT_ONE))
    assert ledger.params().sample_cap == 2**32 - 1 and ledger.total_weight() == 3000 * WEIGHT_ONE


def test_admission_weight_is_bounded_by_a_named_error(federation):
    """The red team's `admitMember(weight = 2^64 - 1)` reverted with a bare Panic(0x11)."""
    fed = federation
    newcomer = fed.outsiders[0].address
    max_weight = fed.ledger.contract.functions.MAX_MEMBER_WEIGHT().call()
    assert max_weight == 1000 * WEIGHT_ONE
    for weight in (2**64 - 1, max_weight + 1):
        with pytest.raises(chain.InvalidParameter) as err:
            fed.owner.admit_member(newcomer, b"\x42" * 32, weight)
        assert err.value.name == "weight"
    before = fed.ledger.total_weight()
    fed.owner.admit_member(newcomer, b"\x42" * 32, max_weight)
    assert fed.ledger.total_weight() == before + max_weight


def test_sample_cap_zero_means_the_default_cap(anvil, dev_keys):
    """With sample_cap = 0 a member claiming 2^32 - 1 samples used to dominate FedAvg: 0 now stands for
    DEFAULT_SAMPLE_CAP, which every aggregator (peers, auditor) reads from the chain and applies."""
    import numpy as np

    import consensus
    from consensus.commitment import Commitment, CommittedUpdate
    from consensus.round_outcome import compute_round_outcome

    ledger = _deploy(anvil, dev_keys)
    cap = ledger.params().sample_cap
    assert cap == ledger.contract.functions.DEFAULT_SAMPLE_CAP().call() == 65_536
    members = [m.address for m in _members(dev_keys)]
    liar = members[0]
    ledger.with_account(dev_keys[1].private_key).commit(1, b"\1" * 32, "bafkreiliar", 2**32 - 1)
    assert ledger.commitments(1)[0].num_samples == 2**32 - 1  # recorded as claimed, weighted as capped

    genesis = consensus.encode({"w": np.zeros(4, dtype=np.float32)})
    honest = consensus.encode({"w": np.zeros(4, dtype=np.float32)})
    poison = consensus.encode({"w": np.full(4, 1.0, dtype=np.float32)})
    honest_samples = 60_000
    updates = [CommittedUpdate(Commitment(m, consensus.update_hash(poison if m == liar else honest), "",
                                          2**32 - 1 if m == liar else honest_samples), poison if m == liar else honest)
               for m in members]
    outcome = compute_round_outcome(round=1, previous_model=genesis, updates=updates, rule="fedavg", rule_param=0,
                                    f=0, reward_pool=0, sample_cap=cap)
    liar_share = float(consensus.decode(outcome.new_model)["w"][0])
    assert liar_share == pytest.approx(cap / (cap + 2 * honest_samples), abs=1e-4)  # ~35 %, not ~100 %
