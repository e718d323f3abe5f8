"""Federation deploy configuration (JSON or TOML), validated with pydantic; every problem becomes one `ConfigError`.

Example (JSON; TOML uses the same keys, `[[members]]` tables):

    {"members": [{"address": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
                  "enc_key": "0x<64 hex>", "weight": 1000000}],
     "rule": "multi_krum", "f": 1, "quorum_bps": 5000, "commit_period": 120, "vote_period": 120,
     "reward_per_round_wei": 1000000000000000000, "funding_wei": 10000000000000000000,
     "model_spec_hash": "0x<64 hex>", "genesis_model_hash": "0x<64 hex>", "genesis_model_cid": "bafk..."}

Voting weights are fixed point: 1_000_000 = 1.0 (the contract's WEIGHT_ONE); reputation moves every member's
weight towards 1.0 when it votes with the majority and towards 0 otherwise.
"""
from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from consensus.auto_rule import AUTO, resolve_rule
from consensus.bounded_json import BoundedJsonError, loads_bounded
from consensus.errors import AggregationError
from consensus.feasibility import max_f, min_valid_updates, split_rule
from consensus.reputation import WEIGHT_ONE
from ledger_tools.chain.records import LedgerParams
from ledger_tools.errors import LedgerToolsError

_HEX32 = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
MAX_CONFIG_BYTES = 64 << 20


class ConfigError(LedgerToolsError, ValueError):
    """The federation config file is missing, unreadable or invalid; the message says what and where."""


def _bytes32_hex(value: str) -> str:
    if not isinstance(value, str) or not _HEX32.match(value):
        raise ValueError("must be 32 bytes as 64 hex digits (0x-prefixed)")
    return "0x" + value.removeprefix("0x").lower()


def _address(value: str) -> str:
    from eth_utils import is_checksum_address, to_checksum_address

    if not isinstance(value, str) or not _ADDRESS.match(value):
        raise ValueError("must be a 0x-prefixed 20-byte hex address")
    if value != value.lower() and value[2:] != value[2:].upper() and not is_checksum_address(value):
        raise ValueError("has a wrong EIP-55 checksum (mixed case that does not match)")
    return to_checksum_address(value)


def _rule(value: str) -> str:
    if value == AUTO:  # resolved from the members and f by FederationConfig (consensus.auto_rule)
        return value
    try:
        split_rule(value)
    except AggregationError as exc:
        raise ValueError(str(exc)) from None
    return value


Bytes32Hex = Annotated[str, AfterValidator(_bytes32_hex)]
Address = Annotated[str, AfterValidator(_address)]
UInt16 = Annotated[int, Field(ge=0, le=2**16 - 1)]
UInt32 = Annotated[int, Field(ge=0, le=2**32 - 1)]


class MemberConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    address: Address
    enc_key: Bytes32Hex  # X25519 public key
    weight: Annotated[int, Field(ge=0, le=2**64 - 1)] = WEIGHT_ONE


class AuditorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    address: Address
    enc_key: Bytes32Hex


class RoundParams(BaseModel):
    """The rules every round runs by — the contract's `Params` minus the genesis model. Declared once here, with
    their bounds; the deploy config, the local bootstrap and the simulator all build on it."""

    model_config = ConfigDict(extra="forbid")

    rule: Annotated[str, AfterValidator(_rule)] = "fedavg"
    rule_param: UInt16 = 0
    f: UInt16 = 0
    quorum_bps: Annotated[int, Field(ge=5000, le=9999)] = 5000
    commit_period: Annotated[int, Field(gt=0, le=2**24 - 1)] = 120  # the ledger's bound (32-bit deadlines)
    vote_period: Annotated[int, Field(gt=0, le=2**24 - 1)] = 120
    reward_per_round_wei: Annotated[int, Field(ge=0, lt=2**96)] = 0
    scale_bits: Annotated[int, Field(ge=1, le=62)] = 20
    alpha_bps: Annotated[int, Field(ge=0, le=10_000)] = 1000
    sample_cap: UInt32 = 0

    def replace(self, **changes: Any) -> RoundParams:
        """A validated copy with `changes` (unknown names and out-of-range values are refused)."""
        return RoundParams.model_validate({**self.round_params().model_dump(), **changes})

    def round_params(self) -> RoundParams:
        """Just the round rules (also of a FederationConfig)."""
        return RoundParams.model_validate({k: getattr(self, k) for k in RoundParams.model_fields})


class FederationConfig(RoundParams):
    """Everything `deploy_federation` needs; field names match the contract's parameters in snake_case."""

    members: Annotated[list[MemberConfig], Field(min_length=1)]
    auditors: list[AuditorConfig] = []
    funding_wei: Annotated[int, Field(ge=0)] = 0
    model_spec_hash: Bytes32Hex
    genesis_model_hash: Bytes32Hex
    genesis_model_cid: Annotated[str, Field(min_length=1)]

    @model_validator(mode="after")
    def _consistent(self) -> "FederationConfig":
        addresses = [m.address for m in self.members]
        duplicates = sorted({a for a in addresses if addresses.count(a) > 1})
        if duplicates:
            raise ValueError(f"duplicate member address(es): {', '.join(duplicates)}")
        auditors = [a.address for a in self.auditors]
        if len(set(auditors)) != len(auditors):
            raise ValueError("duplicate auditor address")
        if self.f >= len(self.members):
            raise ValueError(f"f={self.f} must be smaller than the number of members ({len(self.members)})")
        if self.rule == AUTO:  # the chain stores the concrete rule: every peer and auditor runs the same one
            self.rule = resolve_rule(AUTO, len(self.members), self.f)
        need = min_valid_updates(self.rule, self.f)
        if len(self.members) < need:
            most = max_f(self.rule, len(self.members))
            fix = f"f <= {most}" if most >= 0 else "another rule"
            raise ValueError(f"rule {self.rule} with f={self.f} needs at least {need} members, this federation has "
                             f"{len(self.members)}: no round could ever aggregate (use {fix}, or more members)")
        if sum(m.weight for m in self.members) == 0:
            raise ValueError("total member weight must be positive")
        if sum(m.weight for m in self.members) >= 2**64:
            raise ValueError("total member weight must fit in 64 bits")
        return self

    @classmethod
    def load(cls, path: str | Path) -> "FederationConfig":
        """Read and validate a .json or .toml config file; raise `ConfigError` with one clear message."""
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read config ({exc.strerror or exc})") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        try:
            if path.suffix.lower() == ".toml":
                data = tomllib.loads(text)
            elif path.suffix.lower() == ".json":  # bounded: a deeply nested file must not overflow the C stack
                data = loads_bounded(text, max_bytes=MAX_CONFIG_BYTES, max_depth=16, what="config")
            else:
                raise ConfigError(f"{path}: unsupported config format {path.suffix!r} (use .json or .toml)")
        except (BoundedJsonError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: not valid {path.suffix[1:].upper()}: {exc}") from None
        return cls.from_data(data, source=str(path))

    @classmethod
    def from_data(cls, data: Any, *, source: str = "config") -> "FederationConfig":
        """Validate an already-parsed mapping; raise `ConfigError` naming every bad field."""
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: expected a mapping of settings at the top level")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(f"{source}: {format_validation_error(exc)}") from None

    def dump(self, path: str | Path) -> None:
        """Write as JSON (the format `load` reads back)."""
        Path(path).write_text(self.model_dump_json(indent=2) + "\n")

    @property
    def total_weight(self) -> int:
        return sum(m.weight for m in self.members)

    def ledger_params(self) -> LedgerParams:
        """The contract's constructor parameters."""
        return LedgerParams(
            rule=self.rule, rule_param=self.rule_param, f=self.f, quorum_bps=self.quorum_bps,
            commit_period=self.commit_period, vote_period=self.vote_period,
            reward_per_round_wei=self.reward_per_round_wei, model_spec_hash=bytes.fromhex(self.model_spec_hash[2:]),
            genesis_model_hash=bytes.fromhex(self.genesis_model_hash[2:]), genesis_model_cid=self.genesis_model_cid,
            scale_bits=self.scale_bits, alpha_bps=self.alpha_bps, sample_cap=self.sample_cap,
        )


def format_validation_error(exc: ValidationError) -> str:
    """pydantic's multi-line report as one line: `members.0.enc_key: must be ...; f: field required`."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "config"
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "missing":
            message = "missing required key"
        elif err["type"] == "extra_forbidden":
            message = "unknown key"
        parts.append(f"{where}: {message}")
    return "; ".join(parts)
