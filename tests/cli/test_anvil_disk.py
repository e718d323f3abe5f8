"""anvil writes no chain states to disk (disk leak): by default anvil keeps 500 historical states in memory and
spills each older one to ~/.foundry/anvil/tmp/anvil-state-*/ (up to 3,600, about 1 MB each for a long ledger);
an anvil killed with SIGKILL never removes that dir. 106 such dirs (70 GB) filled this machine's disk.

`start_anvil` passes `--prune-history STATE_HISTORY`: recent states stay readable (the binding replays a failed
transaction at its block), blocks and logs of the whole chain stay, and nothing lands under $HOME.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from devnet.anvil import STATE_HISTORY, _rpc, dev_accounts, start_anvil

# Measured with anvil 1.7.1 and no flag: the first state file appears at block ~501 and 600 blocks leave ~100.
BLOCKS = 600


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def test_long_chain_writes_no_state_to_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))  # anvil's state cache lives under $HOME/.foundry/anvil/tmp
    me = dev_accounts()[0].address
    with start_anvil(log_path=tmp_path / "anvil.log") as anvil:
        for _ in range(BLOCKS):
            _rpc(anvil.rpc_url, "evm_mine", [])
        head = int(str(_rpc(anvil.rpc_url, "eth_blockNumber", [])), 16)
        assert head >= BLOCKS
        assert _files(home) == [], "anvil persisted historical states under $HOME"
        assert list(home.rglob("anvil-state-*")) == []  # not even an empty state dir (a SIGKILL would leave it)
        # what fedledger reads from history still answers: state at a recent block, any block of the chain
        recent = head - STATE_HISTORY // 2
        assert int(str(_rpc(anvil.rpc_url, "eth_getBalance", [me, hex(recent)])), 16) > 0
        block = _rpc(anvil.rpc_url, "eth_getBlockByNumber", ["0x1", False])
        assert isinstance(block, dict) and int(block["number"], 16) == 1
