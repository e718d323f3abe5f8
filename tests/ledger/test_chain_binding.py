"""The Python binding, config loader, compiler cache and launcher: errors are precise and clear."""
from __future__ import annotations

import json

import pytest
from web3 import Web3

from consensus.digest import excluded_hash, vote_digest
from consensus.merkle import reward_leaf
from devnet.compile import BUILD_DIR, CONTRACTS_DIR, SHIM, compile_source, source_hash
from devnet.ports import free_port
from helpers.fixtures_chain import AGG, CID_AGG, CID_REWARDS, ETH
from ledger_tools import chain
from ledger_tools.chain import FederationLedger, LedgerUnavailable
from ledger_tools.config import ConfigError, FederationConfig

GOOD = {
    "members": [{"address": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "enc_key": "0x" + "ab" * 32}],
    "model_spec_hash": "0x" + "01" * 32,
    "genesis_model_hash": "0x" + "02" * 32,
    "genesis_model_cid": "bafkreigenesis",
}


def test_unreachable_rpc_is_ledger_unavailable():
    url = f"http://127.0.0.1:{free_port()}"
    ledger = FederationLedger(url, "0x" + "11" * 20)
    with pytest.raises(LedgerUnavailable, match="cannot reach the Ethereum RPC"):
        ledger.current_round()
    with pytest.raises(LedgerUnavailable):
        ledger.check()


def test_no_contract_at_address(anvil):
    with pytest.raises(LedgerUnavailable, match="no contract"):
        FederationLedger(anvil.rpc_url, "0x" + "22" * 20).check()


def test_read_only_binding_refuses_transactions(federation):
    reader = FederationLedger(federation.rpc_url, federation.ledger.address)
    assert reader.current_round() == 1
    with pytest.raises(chain.LedgerError, match="read-only"):
        reader.fund(1)


def test_every_contract_error_has_a_python_class():
    abi_errors = {e["name"] for e in json.loads((BUILD_DIR / "FederationLedger.json").read_text())[
        "contracts"]["FederationLedger"]["abi"] if e["type"] == "error"}
    assert abi_errors == set(chain.ERRORS)
    assert all(issubclass(cls, chain.LedgerError) for cls in chain.ERRORS.values())


def test_params_and_views(federation):
    p = federation.ledger.params()
    assert (p.rule, p.f, p.quorum_bps, p.commit_period, p.reward_per_round_wei) == ("fedavg", 1, 5000, 100, ETH)
    assert p.genesis_model_hash == b"\x9e" * 32 and federation.ledger.owner() == federation.owner.account.address
    assert federation.ledger.totals() == (5, 5_000_000, 0)
    assert federation.ledger.balance() == 20 * ETH


def test_hash_helpers_match_the_contract(federation):
    a = sorted((x.address for x in federation.accounts), key=lambda s: int(s, 16))
    assert excluded_hash([]) == bytes.fromhex("c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470")
    federation.commit_all(1)
    digest = vote_digest(AGG, b"\x05" * 32, a[:2])
    receipt = federation.members[0].vote(1, AGG, CID_AGG, b"\x05" * 32, CID_REWARDS, a[:2], digest=digest)
    assert receipt.digest == digest and federation.ledger.tally(1, digest) == 1_000_000


def test_consensus_reward_tree_is_accepted(federation):
    import consensus

    fed = federation
    accounts = [x.address for x in fed.accounts]
    amounts = [ETH // 2, ETH // 4, 0, ETH // 8, ETH // 8]
    tree = consensus.RewardTree.build(1, accounts, amounts)
    # the leaf as abi.encode + double keccak, built here with web3 (independent of consensus' own packing)
    assert reward_leaf(1, accounts[0], ETH // 2) == bytes(Web3.keccak(Web3.keccak(
        (1).to_bytes(32, "big") + bytes.fromhex(accounts[0][2:]).rjust(32, b"\0") + (ETH // 2).to_bytes(32, "big"))))
    fed.commit_all(1)
    for m in fed.members[:3]:
        m.vote(1, AGG, CID_AGG, tree.root, CID_REWARDS)
    fed.members[3].claim([1], [ETH // 8], [tree.proof(accounts[3])])
    assert fed.ledger.is_claimed(accounts[3], 1)


def test_compiled_artifact_is_current_and_cached():
    source = CONTRACTS_DIR / "FederationLedger.sol"
    artifact = json.loads((BUILD_DIR / "FederationLedger.json").read_text())
    assert artifact["sourceHash"] == source_hash(source), "run `python -m devnet.compile` and commit the artifact"
    before = (BUILD_DIR / "FederationLedger.json").stat().st_mtime_ns
    compile_source(source)
    assert (BUILD_DIR / "FederationLedger.json").stat().st_mtime_ns == before  # cache hit: no recompilation
    assert SHIM.exists()


def test_config_json_and_toml(tmp_path):
    path = tmp_path / "fed.json"
    path.write_text(json.dumps(GOOD))
    config = FederationConfig.load(path)
    assert config.members[0].weight == 1_000_000 and config.quorum_bps == 5000
    toml = tmp_path / "fed.toml"
    toml.write_text(
        'model_spec_hash = "0x' + "01" * 32 + '"\ngenesis_model_hash = "0x' + "02" * 32 + '"\n'
        'genesis_model_cid = "bafkreigenesis"\nrule = "nnm+median"\n\n[[members]]\n'
        'address = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"\nenc_key = "' + "ab" * 32 + '"\n')
    assert FederationConfig.load(toml).rule == "nnm+median"


@pytest.mark.parametrize(("change", "message"), [
    ({"members": "alice"}, "members: Input should be a valid list"),
    ({"f": "many"}, "f: Input should be a valid integer"),
    ({"quorum_bps": 4000}, "quorum_bps: Input should be greater than or equal to 5000"),
    ({"rule": "average"}, "unknown rule 'average'"),
    ({"genesis_model_hash": "0x1234"}, "genesis_model_hash: must be 32 bytes"),
    ({"extra": 1}, "extra: unknown key"),
    ({"f": 1}, "f=1 must be smaller than the number of members"),
    ({"rule": "krum"}, "rule krum with f=0 needs at least 3 members, this federation has 1"),
    ({"rule": "nnm+bulyan"}, "no round could ever aggregate"),
])
def test_config_errors_are_one_clear_line(tmp_path, change, message):
    data = {**GOOD, **change}
    data = {k: v for k, v in data.items() if v is not None}
    path = tmp_path / "fed.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError) as err:
        FederationConfig.load(path)
    assert message in str(err.value) and "\n" not in str(err.value) and str(path) in str(err.value)


def test_config_missing_key_and_bad_files(tmp_path):
    path = tmp_path / "fed.json"
    path.write_text(json.dumps({k: v for k, v in GOOD.items() if k != "genesis_model_cid"}))
    with pytest.raises(ConfigError, match="genesis_model_cid: missing required key"):
        FederationConfig.load(path)
    with pytest.raises(ConfigError, match="cannot read"):
        FederationConfig.load(tmp_path / "absent.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        FederationConfig.load(tmp_path / "bad.json")
    (tmp_path / "fed.yaml").write_text("a: 1")
    with pytest.raises(ConfigError, match="unsupported config format"):
        FederationConfig.load(tmp_path / "fed.yaml")


def test_announcements_are_each_members_latest_multiaddr(federation):
    from ledger_tools.chain import InvalidMultiaddrLength, NotMember

    first, second = federation.members[0], federation.members[1]
    first.announce("/ip4/10.0.0.1/tcp/4001/p2p/QmOld")
    second.announce("/ip4/10.0.0.2/tcp/4001/p2p/QmTwo")
    first.announce("/ip4/10.0.0.9/tcp/4001/p2p/QmNew")  # moved: the latest counts
    got = {m: a.multiaddr for m, a in federation.ledger.announcements().items()}
    assert got == {first.account.address: "/ip4/10.0.0.9/tcp/4001/p2p/QmNew",
                   second.account.address: "/ip4/10.0.0.2/tcp/4001/p2p/QmTwo"}
    with pytest.raises(InvalidMultiaddrLength):
        first.announce("/ip4/" + "9" * 300)
    with pytest.raises(NotMember):
        federation.ledger.with_account(federation.outsiders[0].private_key).announce("/ip4/10.0.0.3/tcp/1")
