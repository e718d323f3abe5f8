"""IPFS fixtures: a real js-ipfs node (Kubo RPC API) on free loopback ports, always stopped afterwards."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from devnet.ipfs import IpfsProcess, start_ipfs
from ledger_tools.blobstore import IpfsBlobStore


@pytest.fixture(scope="session")
def ipfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IpfsProcess]:
    """One local IPFS node for the whole session (persistent repo under the session's tmp dir)."""
    node = start_ipfs(repo_dir=tmp_path_factory.mktemp("ipfs") / "repo")
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture
def ipfs_store(ipfs: IpfsProcess) -> IpfsBlobStore:
    """A blob store client on the session node, with a short backoff so failing tests stay fast."""
    return IpfsBlobStore(ipfs.api_url, timeout=30, retries=2, backoff=0.05)
