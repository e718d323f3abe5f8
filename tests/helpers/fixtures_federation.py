"""Federation fixtures: a dedicated anvil (its clock must track the wall clock: no evm_increaseTime here),
the session IPFS node, and `local_federation(...)` that bootstraps a fresh federation of peer identities.

Loaded by tests/conftest.py as a pytest plugin.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from devnet.anvil import AnvilProcess, start_anvil
from devnet.bootstrap import LOCAL_ROUND_PARAMS, LocalFederation, create_local_federation
from ledger_tools.config import RoundParams


@pytest.fixture(scope="session")
def peer_anvil(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AnvilProcess]:
    """An anvil only for peer-process tests: shared-anvil tests warp time, peers use the wall clock."""
    node = start_anvil(log_path=tmp_path_factory.mktemp("peer-anvil") / "anvil.log")
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture
def local_federation(peer_anvil: AnvilProcess, ipfs, tmp_path: Path) -> Callable[..., LocalFederation]:
    """Factory: `local_federation(n_peers, rule=..., f=..., ...)` → a deployed LocalFederation under tmp_path."""
    counter = iter(range(1000))

    def make(n_peers: int = 3, **kwargs: Any) -> LocalFederation:
        """Round rules (rule=, f=, commit_period=, ...) go into `params`; everything else to the bootstrap."""
        rules = {"commit_period": 60, "vote_period": 30}
        rules.update({k: kwargs.pop(k) for k in list(kwargs) if k in RoundParams.model_fields})
        kwargs.setdefault("scrypt_n", 2**12)
        return create_local_federation(tmp_path / f"fed{next(counter)}", n_peers, rpc_url=peer_anvil.rpc_url,
                                       ipfs_api=ipfs.api_url, params=LOCAL_ROUND_PARAMS.replace(**rules), **kwargs)

    return make
