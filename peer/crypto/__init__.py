"""The member's keys (Ethereum account + X25519) and sealed blobs."""
