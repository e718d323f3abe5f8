"""Deploy a federation from a `FederationConfig`: compile (cached) and deploy `FederationLedger`."""
from __future__ import annotations

from devnet.compile import load_contract
from ledger_tools.chain import AuditorInit, FederationLedger, LedgerParams, MemberInit
from ledger_tools.config import FederationConfig


def ledger_params(config: FederationConfig) -> LedgerParams:
    """The contract's constructor parameters from a validated config."""
    return LedgerParams(
        rule=config.rule,
        rule_param=config.rule_param,
        f=config.f,
        quorum_bps=config.quorum_bps,
        commit_period=config.commit_period,
        vote_period=config.vote_period,
        reward_per_round_wei=config.reward_per_round_wei,
        model_spec_hash=bytes.fromhex(config.model_spec_hash[2:]),
        genesis_model_hash=bytes.fromhex(config.genesis_model_hash[2:]),
        genesis_model_cid=config.genesis_model_cid,
        scale_bits=config.scale_bits,
        alpha_bps=config.alpha_bps,
        sample_cap=config.sample_cap,
    )


def deploy_federation(rpc_url: str, config: FederationConfig, deployer_key: str) -> FederationLedger:
    """Deploy a new FederationLedger funded with `config.funding_wei`; the deployer becomes its owner.

    Returns a binding that signs as the deployer (`.with_account(key)` for a member's view);
    `.address` and `.deploy_block` identify the deployment.
    """
    artifact = load_contract("FederationLedger")
    return FederationLedger.deploy(
        rpc_url,
        deployer_key,
        ledger_params(config),
        [MemberInit(m.address, bytes.fromhex(m.enc_key[2:]), m.weight) for m in config.members],
        [AuditorInit(a.address, bytes.fromhex(a.enc_key[2:])) for a in config.auditors],
        funding_wei=config.funding_wei,
        abi=artifact.abi,
        bytecode=artifact.bytecode,
    )
