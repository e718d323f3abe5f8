"""Peer-to-peer transport: signed gossip envelopes and blob chunks, admission, the libp2p node, dialling,
membership cache, ledger discovery, evidence."""
