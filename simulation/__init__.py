"""Many peers in one process running the protocol's own code: the simulation engine (`engine`), its
configuration (`config`), records (`records`), attack strengths (`attacks`) and transports (`transport` in
memory, `chain_transport` on a devnet + IPFS). Used by `fedledger simulate` and the benches."""
