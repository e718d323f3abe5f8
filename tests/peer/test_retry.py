"""What the round loop retries: exactly the errors marked Transient (and raw connection failures), never a revert,
a bad blob or a programming error — decided by isinstance on the error roots, not by type names."""
from __future__ import annotations

import io

import pytest
import requests

from ledger_tools.blobstore import BlobIntegrityError, BlobNotFound, BlobStoreUnavailable
from ledger_tools.chain import AlreadyVoted, LedgerUnavailable, TransactionFailed
from ledger_tools.errors import LedgerToolsError, Transient
from ledger_tools.updates import UpdateUnusable
from peer.errors import PeerError
from peer.loop.log import NodeLog
from peer.loop.retry import Retrier, Stopped, is_transient


@pytest.mark.parametrize("exc", [
    LedgerUnavailable("rpc down"), BlobStoreUnavailable("ipfs down"), ConnectionRefusedError(), TimeoutError(),
    requests.ConnectionError(),
])
def test_transient_failures_are_retried(exc):
    assert is_transient(exc)


@pytest.mark.parametrize("exc", [
    AlreadyVoted(member="0x" + "11" * 20, round=1), TransactionFailed("reverted"), BlobNotFound("no provider"),
    BlobIntegrityError("lying node"), UpdateUnusable("unseal-failed", "x"), ValueError("bug"), KeyError("bug"),
])
def test_everything_else_is_not(exc):
    assert not is_transient(exc)


def test_each_package_has_one_root_and_transient_is_a_marker():
    assert issubclass(LedgerUnavailable, LedgerToolsError) and issubclass(LedgerUnavailable, Transient)
    assert issubclass(BlobStoreUnavailable, LedgerToolsError) and issubclass(BlobStoreUnavailable, Transient)
    assert not issubclass(BlobNotFound, Transient) and issubclass(Stopped, PeerError)


def test_retrier_retries_transient_then_gives_up_and_never_retries_a_revert():
    slept: list[float] = []
    log = NodeLog("t", json_mode=True, stream=io.StringIO())
    retry = Retrier(log, sleep=slept.append, should_stop=lambda: False, attempts=3, base_delay=0.5)
    calls = {"n": 0}

    def down() -> None:
        calls["n"] += 1
        raise LedgerUnavailable("rpc down")

    with pytest.raises(LedgerUnavailable):
        retry("read", down)
    assert calls["n"] == 3 and slept == [0.5, 1.0]

    def revert() -> None:
        calls["n"] += 1
        raise AlreadyVoted(member="0x" + "11" * 20, round=1)

    calls["n"] = 0
    with pytest.raises(AlreadyVoted):
        retry("vote", revert)
    assert calls["n"] == 1
