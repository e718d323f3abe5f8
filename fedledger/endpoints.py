"""Where a federation lives (--rpc, --contract, --ipfs, --cache-dir) and who is asking (a peer identity).

Shared by the read-side command groups (`fedledger audit`, `fedledger rewards`): each mounts
`endpoint_options` as its callback and gets an `Endpoints` in `ctx.obj`. Every expected failure of reaching
the chain, the contract, IPFS or a keystore becomes one `UserError` line with a hint.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional

import typer

from fedledger.errors import UserError

DEFAULT_RPC = "http://127.0.0.1:8545"
DEFAULT_IPFS = "http://127.0.0.1:5001"


@dataclass
class Endpoints:
    rpc: str
    contract: str | None
    ipfs: str
    cache_dir: Path | None

    def ledger(self):
        """A read-only binding of the federation's contract."""
        from ledger_tools.chain import FederationLedger

        if not self.contract:
            raise UserError("no contract address given",
                            hint="pass --contract 0x… (or set FEDLEDGER_CONTRACT)", exit_code=2)
        try:
            return FederationLedger(self.rpc, self.contract)
        except ValueError as exc:
            raise UserError(f"{self.contract!r} is not a contract address: {exc}", exit_code=2) from exc

    def store(self):
        """The IPFS node, checked to answer."""
        from ledger_tools.blobstore import BlobStoreError, IpfsBlobStore

        try:
            store = IpfsBlobStore(self.ipfs, timeout=30, retries=1, backoff=0.2)
            store.node_id()
        except (BlobStoreError, ValueError) as exc:
            raise UserError(f"cannot reach the IPFS API at {self.ipfs}: {exc}",
                            hint="start one with `fedledger devnet up`, or pass --ipfs URL") from exc
        return store

    def load(self):
        """(ledger, history): the event cache synced and the history rebuilt from it."""
        from ledger_tools.chain import LedgerError, LedgerUnavailable
        from ledger_tools.audit.history import load_history
        from ledger_tools.ledger_cache import LedgerCacheError

        ledger = self.ledger()
        try:
            history, _ = load_history(ledger, cache_dir=self.cache_dir)
        except LedgerUnavailable as exc:
            hint = ("check --contract (and that it was deployed on this chain)" if "no contract" in str(exc)
                    else "is the node running? pass --rpc URL (or set FEDLEDGER_RPC)")
            raise UserError(str(exc), hint=hint) from exc
        except LedgerCacheError as exc:
            raise UserError(str(exc), hint="retry; if it persists, delete the cache (--cache-dir)") from exc
        except LedgerError as exc:
            raise UserError(f"reading the ledger at {self.contract} failed: {exc}") from exc
        except Exception as exc:  # a contract that is not a FederationLedger fails to decode its views
            if type(exc).__module__.startswith("web3"):
                raise UserError(f"{self.contract} on {self.rpc} does not look like a FederationLedger "
                                f"({type(exc).__name__})", hint="check --contract") from exc
            raise
        return ledger, history


def endpoint_options(
    typer_ctx: typer.Context,
    rpc: Annotated[str, typer.Option("--rpc", "--rpc-url", envvar="FEDLEDGER_RPC", help="Ethereum JSON-RPC URL.")] = DEFAULT_RPC,
    contract: Annotated[Optional[str], typer.Option("--contract", envvar="FEDLEDGER_CONTRACT",
                                                    help="FederationLedger address.")] = None,
    ipfs: Annotated[str, typer.Option("--ipfs", "--ipfs-api", envvar="FEDLEDGER_IPFS", help="IPFS (Kubo RPC) API URL.")] = DEFAULT_IPFS,
    cache_dir: Annotated[Optional[Path], typer.Option("--cache-dir", envvar="FEDLEDGER_CACHE_DIR",
                                                      help="Event cache directory (default ~/.cache/fedledger).")] = None,
) -> None:
    """Where the federation lives (every option also reads an environment variable)."""
    typer_ctx.obj = Endpoints(rpc, contract, ipfs, cache_dir)


def unlock_identity(state_dir: Path, password_file: Path | None):
    """The peer identity (Ethereum account + X25519 key) in `state_dir`, unlocked; one clear line otherwise."""
    from fedledger.peer_cmd import read_password
    from peer.crypto.identity import IdentityError, PeerIdentity, WrongPassword

    try:
        return PeerIdentity.load(state_dir, read_password(password_file, confirm=False))
    except WrongPassword as exc:
        raise UserError(f"wrong key password: {exc}", hint="check --password-file / FEDLEDGER_PASSWORD") from exc
    except IdentityError as exc:
        raise UserError(str(exc), hint="pass the --state-dir made by `fedledger peer init`") from exc


def parse_round_range(text: str | None):
    """`--rounds N|A..B|A..|..B` as a `RoundRange` (None when not given); a malformed range is a usage error."""
    from ledger_tools.audit.history import RoundRange

    if not text:
        return None
    try:
        return RoundRange.parse(text)
    except ValueError as exc:
        raise UserError(str(exc), exit_code=2) from exc
