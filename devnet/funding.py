"""Give addresses ETH on the devnet, so new members can pay gas for their commits and votes.

The sender is an anvil dev account (public mnemonic, funded at genesis): this only makes sense on a devnet,
so a chain whose id is not anvil's is refused before anything is signed."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from eth_utils import is_address, to_checksum_address

from devnet.anvil import ANVIL_CHAIN_ID, dev_accounts, rpc_answers
from devnet.errors import DevnetError

WEI_PER_ETH = 10**18


class FundingError(DevnetError):
    """Funding refused or failed; the message says why, `hint` what to do."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message, self.hint = message, hint


@dataclass(frozen=True)
class Funded:
    address: str
    tx_hash: str
    balance_wei: int


def parse_addresses(addresses: Sequence[str]) -> list[str]:
    """Checksummed addresses; the first malformed one is refused (before any network call)."""
    out = []
    for raw in addresses:
        if not is_address(raw):
            raise FundingError(f"{raw!r} is not an Ethereum address",
                               hint="an address is 0x followed by 40 hex digits (`fedledger peer init` prints it)")
        out.append(to_checksum_address(raw))
    return out


def fund(rpc_url: str, addresses: Sequence[str], wei: int, *, sender_index: int = 0,
         timeout: float = 30.0) -> list[Funded]:
    """Send `wei` from anvil dev account `sender_index` to each address, waiting for every receipt."""
    if wei <= 0:
        raise FundingError("the amount must be positive", hint="--eth N with N > 0")
    targets = parse_addresses(addresses)
    chain_id = rpc_answers(rpc_url, timeout=3.0)
    if chain_id is None:
        raise FundingError(f"cannot reach a JSON-RPC node at {rpc_url}",
                           hint="start the devnet with `fedledger devnet up -d`, or pass --rpc URL")
    if chain_id != ANVIL_CHAIN_ID:
        raise FundingError(f"chain {chain_id} at {rpc_url} is not a devnet (anvil is chain {ANVIL_CHAIN_ID})",
                           hint="on a real chain, send ETH to the members from a funded wallet")
    from web3.exceptions import Web3Exception

    try:
        return _send_all(rpc_url, chain_id, targets, wei, sender_index, timeout)
    except (OSError, Web3Exception) as exc:
        raise FundingError(f"funding through {rpc_url} failed: {exc}") from exc


def _send_all(rpc_url: str, chain_id: int, targets: list[str], wei: int, sender_index: int,
              timeout: float) -> list[Funded]:
    from web3 import Web3

    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}))
    sender = dev_accounts()[sender_index]
    nonce = w3.eth.get_transaction_count(sender.address, "pending")
    gas_price = int(w3.eth.gas_price)
    hashes = []
    for i, address in enumerate(targets):
        tx = {"to": address, "value": wei, "gas": 21_000, "gasPrice": gas_price * 2, "nonce": nonce + i,
              "chainId": chain_id}
        signed = w3.eth.account.sign_transaction(tx, sender.private_key)
        hashes.append(w3.eth.send_raw_transaction(signed.raw_transaction))
    funded = []
    for address, tx_hash in zip(targets, hashes):
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=timeout, poll_latency=0.05)
        if receipt["status"] != 1:
            raise FundingError(f"transfer to {address} failed (tx {tx_hash.hex()})")
        funded.append(Funded(address, "0x" + tx_hash.hex().removeprefix("0x"), int(w3.eth.get_balance(address))))
    return funded
