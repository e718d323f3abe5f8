"""Deploy a federation from a `FederationConfig`: compile (cached) and deploy `FederationLedger`."""
from __future__ import annotations

from devnet.compile import load_contract
from ledger_tools.chain import AuditorInit, FederationLedger, MemberInit
from ledger_tools.config import FederationConfig


def deploy_federation(rpc_url: str, config: FederationConfig, deployer_key: str) -> FederationLedger:
    """Deploy a new FederationLedger funded with `config.funding_wei`; the deployer becomes its owner.

    Returns a binding that signs as the deployer (`.with_account(key)` for a member's view);
    `.address` and `.deploy_block` identify the deployment.
    """
    artifact = load_contract("FederationLedger")
    return FederationLedger.deploy(
        rpc_url,
        deployer_key,
        config.ledger_params(),
        [MemberInit(m.address, bytes.fromhex(m.enc_key[2:]), m.weight) for m in config.members],
        [AuditorInit(a.address, bytes.fromhex(a.enc_key[2:])) for a in config.auditors],
        funding_wei=config.funding_wei,
        abi=artifact.abi,
        bytecode=artifact.bytecode,
    )
