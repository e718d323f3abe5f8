"""`announce(multiaddr)`: members publish their gossip address as an event (nothing stored), so peers find every
member from the ledger instead of a single bootstrap peer (issue 11). The binding has no method for it here, so the
tests send the call through the binding's signing path."""
from __future__ import annotations

from typing import Any

import pytest

from ledger_tools import chain
from ledger_tools.chain import FederationLedger

ADDR = "/ip4/10.0.0.2/tcp/4001/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"


def _announce(binding: FederationLedger, multiaddr: str) -> Any:
    return binding._send(binding.contract.functions.announce(multiaddr))


def _announced(binding: FederationLedger) -> list[tuple[str, str]]:
    logs = binding.contract.events.MemberAnnounced().get_logs(from_block=binding.deploy_block)
    return [(log["args"]["member"], log["args"]["multiaddr"]) for log in logs]


def test_member_announces_and_re_announces(federation):
    fed = federation
    a, b = fed.members[0], fed.members[1]
    _announce(a, ADDR)
    _announce(b, "/dns4/hospital-b.example/tcp/4001")
    _announce(a, "/ip4/10.0.0.9/tcp/4002")  # a member may move: the latest announcement counts
    assert _announced(fed.ledger) == [
        (fed.accounts[0].address, ADDR),
        (fed.accounts[1].address, "/dns4/hospital-b.example/tcp/4001"),
        (fed.accounts[0].address, "/ip4/10.0.0.9/tcp/4002"),
    ]


def test_announce_accepts_exactly_the_maximum_length(federation):
    limit = 256
    _announce(federation.members[0], "/" + "a" * (limit - 1))
    assert _announced(federation.ledger)[0][1] == "/" + "a" * (limit - 1)


def test_non_member_cannot_announce(federation):
    fed = federation
    outsider = fed.owner.with_account(fed.outsiders[0].private_key)
    with pytest.raises(chain.NotMember) as err:
        _announce(outsider, ADDR)
    assert err.value.account == fed.outsiders[0].address
    with pytest.raises(chain.NotMember):  # the owner is not a member either
        _announce(fed.owner, ADDR)
    assert _announced(fed.ledger) == []


@pytest.mark.parametrize("multiaddr", ["", "/" + "a" * 256])
def test_empty_or_too_long_multiaddr_reverts(federation, multiaddr):
    with pytest.raises(chain.ContractRevert) as err:
        _announce(federation.members[0], multiaddr)
    assert err.value.solidity_name == "InvalidMultiaddrLength"
    assert err.value.length == len(multiaddr)
    assert _announced(federation.ledger) == []
