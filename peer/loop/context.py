"""What every step of the round loop works with: one peer's collaborators, wired once by `PeerNode`.

The steps (`peer.loop.commit_step`, `peer.loop.vote_step`, `peer.loop.settle`) are plain functions of a
`NodeContext`, so each can be read — and tested — without the rest of the loop, and none of them owns a connection.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ledger_tools.chain import FederationLedger, LedgerParams, RoundInfo
from ledger_tools.chain import Phase as ChainPhase
from peer.config import PeerConfig
from peer.crypto.identity import PeerIdentity
from peer.learning.tasks import Task, TaskData
from peer.loop.log import NodeLog
from peer.loop.model_store import ModelStore
from peer.loop.retry import Retrier
from peer.loop.round_clock import commit_window_open, judge_phase
from peer.loop.state import PeerState
from peer.net.membership import MembershipCache


@dataclass
class NodeContext:
    cfg: PeerConfig
    identity: PeerIdentity
    ledger: FederationLedger
    blobstore: Any                      # ledger_tools.blobstore.BlobStore
    task: Task
    state: PeerState
    nlog: NodeLog
    retry: Retrier
    membership: MembershipCache
    models: ModelStore
    training_data: Callable[[], TaskData]
    gossip: Any = None                  # peer.net.gossip.GossipNode, or None (IPFS only)
    adversary: Any = None               # peer.byzantine.adversary.Adversary; None for an honest node
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.time
    head_seen: tuple[int, str] | None = None   # (number, hash) of the chain head at the last rollback check
    _params: LedgerParams | None = field(default=None, repr=False)
    _publisher: Any = field(default=None, repr=False)

    @property
    def me(self) -> str:
        return self.identity.address

    @property
    def params(self) -> LedgerParams:
        """The federation's parameters when the peer started (read once): fixed ones and start-up checks only; a
        round's rule, f and periods are `ledger.params_for_round(r)` (they can change by vote between rounds)."""
        if self._params is None:
            self._params = self.retry("read parameters", self.ledger.params)
        return self._params

    @property
    def publisher(self):
        """IPFS adds off the critical path (`peer.loop.publisher.Publisher`), started on first use."""
        if self._publisher is None:
            from peer.loop.publisher import Publisher

            self._publisher = Publisher(self.blobstore, self.nlog, clock=self.clock,
                                        deadline_of=lambda r: self.ledger.round_info(r).vote_deadline)
        return self._publisher

    def round_info(self, r: int) -> RoundInfo:
        return self.retry("read round info", lambda: self.ledger.round_info(r), round=r)

    def round_phase(self, r: int) -> ChainPhase:
        info = self.round_info(r)  # the members counting in round r: fixed on chain when it opened
        return judge_phase(info, info.member_count, self.clock())

    def commit_window(self, r: int) -> tuple[bool, RoundInfo]:
        """Whether a commit sent now still lands in round r's commit window, and the round info it was judged
        on (its `start` goes with a NO_COMMIT verdict: `peer.loop.reconcile.verdict`)."""
        info = self.round_info(r)
        return commit_window_open(info, info.member_count, self.clock(), self.cfg.commit_margin), info

    def seal(self, r: int, update: bytes) -> bytes:
        from peer.crypto.seal import seal

        return seal(update, self.membership.recipients(), federation=self.ledger.address, round=r, sender=self.me)

    def unseal(self, sealed: bytes, sender: str, r: int) -> bytes:
        from peer.crypto.seal import unseal

        return unseal(sealed, self.me, self.identity.enc_private_key, federation=self.ledger.address, round=r,
                      sender=sender)
