"""Deploy a federation from a `FederationConfig`: compile (cached) and deploy `FederationLedger`, then its
`FederationGovernor`, to which the deployer hands the ledger's ownership in the same script.

`deploy_governed_federation` is how every federation is deployed (`fedledger devnet deploy`, the local bootstrap,
`fedledger demo`, the simulator on a chain): afterwards no account has special power. `deploy_federation` is only
its first step, the bare ledger still owned by the deployer, kept for the ledger contract's own tests (its
owner-only functions are the governor's interface) and the round-gas benchmark."""
from __future__ import annotations

from dataclasses import dataclass

from devnet.compile import load_contract
from ledger_tools.chain import AuditorInit, FederationLedger, MemberInit
from ledger_tools.chain.governance import FederationGovernor, GovParams
from ledger_tools.config import FederationConfig


def deploy_federation(rpc_url: str, config: FederationConfig, deployer_key: str) -> FederationLedger:
    """Deploy a new FederationLedger funded with `config.funding_wei`; the deployer becomes its owner (until
    `deploy_governed_federation` hands it to the governor; nothing else should keep an owner-run ledger).

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


@dataclass(frozen=True)
class GovernedFederation:
    """A ledger owned by its governor; both bindings sign as the deployer, who has no special power left."""

    ledger: FederationLedger
    governor: FederationGovernor

    @property
    def address(self) -> str:
        """The ledger's address: what peers, auditors and `--contract` name the federation by."""
        return self.ledger.address

    @property
    def deploy_block(self) -> int:
        return int(self.ledger.deploy_block)


def deploy_governed_federation(rpc_url: str, config: FederationConfig, deployer_key: str,
                               gov_params: GovParams | None = None) -> GovernedFederation:
    """Deploy the ledger, then its governor (which refuses a rule the bootstrap members can never aggregate),
    then transfer the ledger's ownership to the governor: from then on only member votes admit or remove."""
    ledger = deploy_federation(rpc_url, config, deployer_key)
    artifact = load_contract("FederationGovernor")
    governor = FederationGovernor.deploy(rpc_url, deployer_key, ledger.address, gov_params or GovParams(),
                                         abi=artifact.abi, bytecode=artifact.bytecode)
    ledger._send(ledger.contract.functions.transferOwnership(governor.address))
    return GovernedFederation(ledger, governor)
