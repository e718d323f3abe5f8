"""keccak256 (the Ethereum hash) and address helpers."""
from __future__ import annotations

import re

from Crypto.Hash import keccak

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


def keccak256(data: bytes) -> bytes:
    return keccak.new(digest_bits=256, data=data).digest()


def address_bytes(account: str) -> bytes:
    """20 bytes of a 0x-prefixed hex address (any case; the EIP-55 checksum is not enforced)."""
    if not isinstance(account, str) or not _ADDRESS.fullmatch(account):
        raise ValueError(f"not a 0x-prefixed 20-byte hex address: {account!r}")
    return bytes.fromhex(account[2:])


def checksum_address(account: str) -> str:
    """EIP-55 mixed-case form."""
    hexpart = address_bytes(account).hex()
    digest = keccak256(hexpart.encode("ascii")).hex()
    return "0x" + "".join(c.upper() if int(h, 16) >= 8 else c for c, h in zip(hexpart, digest))
