"""The devnet keeps every round across a graceful restart (state file); `cast` independently agrees."""
from __future__ import annotations

import subprocess

import pytest

from devnet.anvil import PortInUse, dev_accounts, start_anvil
from devnet.deploy import deploy_federation
from devnet.toolchain import tool_path
from helpers.fixtures_chain import CID_AGG, ETH, _config, oz_tree
from ledger_tools.chain import FederationLedger, RoundStatus


def _cast_call(rpc_url: str, address: str, signature: str, *args: str) -> str:
    out = subprocess.run([str(tool_path("cast")), "call", address, signature, *args, "--rpc-url", rpc_url],
                         capture_output=True, text=True, timeout=30, check=True)
    return out.stdout.strip()


def test_restart_with_state_file_keeps_rounds(tmp_path):
    keys = dev_accounts()
    state = tmp_path / "chain-state.json"
    with start_anvil(state_file=state) as first:
        config = _config(keys[1:6])
        owner = deploy_federation(first.rpc_url, config, keys[0].private_key)
        members = [owner.with_account(k.private_key) for k in keys[1:6]]
        trees = []
        for r in (1, 2):
            for i, m in enumerate(members):
                m.commit(r, bytes([i + 1]) * 32, f"bafkreiu{r}{i}", 10)
            trees.append(oz_tree(r, {keys[1].address: ETH}))
            for m in members[:3]:
                m.vote(r, bytes([r]) * 32, CID_AGG, trees[-1].root, "bafkreirewards")
        address, deploy_block = owner.address, owner.deploy_block
        port = first.port
    assert state.exists() and state.stat().st_size > 0

    with start_anvil(port=port, state_file=state) as second:
        ledger = FederationLedger(second.rpc_url, address, keys[1].private_key, deploy_block=deploy_block)
        assert ledger.current_round() == 3
        assert ledger.model().round == 2 and ledger.model().hash == bytes([2]) * 32
        assert ledger.round_info(1).status == RoundStatus.FINALIZED
        assert ledger.round_info(2).rewards_root == trees[1].root
        assert len(ledger.commitments(2)) == 5 and ledger.finalization(1) is not None
        # the restarted chain keeps working: claim both rounds
        ledger.claim([1, 2], [ETH, ETH], [t.proof(keys[1].address) for t in trees])
        assert ledger.is_claimed(keys[1].address, 2)

        # independent client: cast reads the same state
        assert _cast_call(second.rpc_url, address, "currentRound()(uint256)") == "3"
        model = _cast_call(second.rpc_url, address, "model()(bytes32,uint256)").split()
        assert model == ["0x" + (bytes([2]) * 32).hex(), "2"]
        with pytest.raises(PortInUse):
            start_anvil(port=second.port)

