"""The round loop: the node's restartable state machine and its steps (commit, collect, vote, settle), its
persisted state and retries."""
