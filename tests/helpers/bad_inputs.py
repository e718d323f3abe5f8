"""The bad-input table of `tests/cli/test_bad_inputs.py` (issue 12, deliverable 4) and the web server it points
`--rpc` at: one row per bad input, for every command of the `fedledger` app."""
from __future__ import annotations

import http.server
from pathlib import Path

ENV = {name: None for name in ("FEDLEDGER_RPC", "FEDLEDGER_CONTRACT", "FEDLEDGER_IPFS", "FEDLEDGER_CACHE_DIR",
                               "FEDLEDGER_PASSWORD", "FEDLEDGER_KEY", "FEDLEDGER_GOVERNOR", "FEDLEDGER_DEPLOYER_KEY",
                               "FEDLEDGER_DEBUG")}
DEAD = "http://127.0.0.1:1"            # nothing listens on port 1: connection refused at once
REVERTS = "0x" + "ab" * 20             # anvil_setCode: a contract whose every call reverts
EMPTY = "0x" + "cd" * 20               # anvil_setCode: a contract that returns nothing (STOP)
NO_CODE = "0x" + "12" * 20             # no contract at all
KEY = "0x" + "01" * 32                 # a valid private key (no funds needed: every row fails before sending)
ADDR = "0x" + "34" * 20
USAGE = "--help"                       # click's own usage errors: "Try '… --help' for help.", exit 2

URL = "e.g. http://127.0.0.1:8545"
RPC = "is the node running?"
CONTRACT = "check --contract"
GOVERNOR = "check --governor"
FOLDER = "folder"
EXAMPLE_CONFIG = str(Path(__file__).resolve().parents[2] / "docs" / "federation.example.json")  # a valid config
EXAMPLE_GENESIS = EXAMPLE_CONFIG  # it holds the genesis fields `devnet config --genesis` reads

# (argv with {placeholders}, exit code, fragment of the hint). Placeholders: {rpc} anvil, {http} an HTTP server
# that is not Ethereum (`python -m http.server`: 501 to a POST), {html} one that answers 200 with a web page,
# {ipfs} a real IPFS API, {fed} a real FederationLedger, {file} a text file, {dir} an empty folder, {junk} binary
# junk, {badtoml}/{badjson} malformed text, {badstate} a devnet state dir with a corrupt services.json, {state} a
# peer state dir, {pw} its password file.
ROWS: list[tuple[list[str], int, str]] = [
    (["version", "extra"], 2, USAGE),
    # ---------------------------------------------------------------- demo (every row fails before any service)
    (["demo", "--rule", "nope"], 2, "--rule auto"),
    (["demo", "--dataset", "nope"], 2, "--dataset digits"),
    (["demo", "--attack", "nope"], 2, "--attack sign_flip"),
    (["demo", "--workdir", "{file}"], 2, FOLDER),
    (["demo", "--peers", "2"], 2, "--peers 3"),
    (["demo", "--rounds", "0"], 2, "--rounds 1 or more"),
    (["demo", "--rule", "bulyan"], 2, "more peers"),
    (["demo", "--timeout", "-5"], 2, "--timeout 600"),
    (["demo", "--peers", "many"], 2, USAGE),
    # ---------------------------------------------------------------- simulate
    (["simulate", "-o", "{file}", "--no-ledger"], 2, FOLDER),
    (["simulate", "--dataset", "csv:/nonexistent:y", "--no-ledger"], 2, "csv:PATH:LABEL"),
    (["simulate", "--dataset", "nope", "--no-ledger"], 2, "csv:PATH:LABEL"),
    (["simulate", "--rpc", "notaurl", "--ipfs", DEAD], 2, URL),
    (["simulate", "--rpc", DEAD, "--ipfs", DEAD, "-n", "3", "-r", "1", "-o", "{dir}"], 3, RPC),
    (["simulate", "--rpc", "{http}", "--ipfs", DEAD, "-n", "3", "-r", "1", "-o", "{dir}"], 3, RPC),
    (["simulate", "--ipfs", "/not/a/multiaddr", "--rpc", DEAD], 2, "/ip4/127.0.0.1/tcp/5001/http"),
    (["simulate", "--f", "100", "--no-ledger", "-n", "5"], 2, "lower --f"),
    (["simulate", "--f", "-1", "--no-ledger", "-n", "5"], 2, "lower --f"),
    (["simulate", "--rule", "nope", "--no-ledger"], 2, "rules: auto"),
    (["simulate", "--attack", "nope", "-b", "0.2", "--no-ledger"], 2, "simulate --help"),
    (["simulate", "--attack", "alie:zz=1", "-b", "0.2", "--no-ledger"], 2, "simulate --help"),
    (["simulate", "--byzantine-fraction", "1.5", "--no-ledger"], 2, "-b 0.2"),
    (["simulate", "--peers", "1", "--no-ledger"], 2, "--peers 2 or more"),
    (["simulate", "--rounds", "0", "--no-ledger"], 2, "--rounds 1 or more"),
    (["simulate", "--lr", "0", "--no-ledger"], 2, "--lr 0.05"),
    # ---------------------------------------------------------------- devnet
    (["devnet", "up", "--host", "not-an-ip", "--detach"], 2, "IP"),
    (["devnet", "up", "--ipfs-peer", "garbage", "--detach", "--state-dir", "{dir}"], 2, "swarm"),
    (["devnet", "up", "--chain-port", "99999", "--detach", "--state-dir", "{dir}"], 2, USAGE),
    (["devnet", "up", "--state-dir", "{file}", "--detach", "--chain-port", "0", "--ipfs-port", "0"], 2, FOLDER),
    (["devnet", "down", "--state-dir", "{badstate}"], 1, "delete"),
    (["devnet", "status", "--state-dir", "{badstate}"], 1, "delete"),
    (["devnet", "connect", "garbage", "--state-dir", "{dir}"], 2, "swarm"),
    (["devnet", "connect", "/ip4/192.0.2.5/tcp/4002/p2p/12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq",
      "--state-dir", "{dir}"], 1, "devnet up --ipfs-only"),
    (["devnet", "deploy", "--config", "{badjson}", "--rpc", "{rpc}"], 2, "docs/devnet.md"),
    (["devnet", "deploy", "--config", "{junk}", "--rpc", "{rpc}"], 2, "docs/devnet.md"),
    (["devnet", "deploy", "--config", "{dir}", "--rpc", "{rpc}"], 2, "docs/devnet.md"),
    (["devnet", "deploy", "--config", "/nonexistent.json", "--rpc", DEAD], 2, "docs/devnet.md"),
    (["devnet", "deploy", "--config", EXAMPLE_CONFIG, "--rpc", "notaurl"], 2, URL),
    (["devnet", "deploy", "--config", EXAMPLE_CONFIG, "--rpc", DEAD], 3, "--rpc URL"),
    (["devnet", "deploy", "--config", EXAMPLE_CONFIG, "--key", "garbage", "--rpc", DEAD], 2, "64 hex digits"),
    (["devnet", "deploy", "--config", EXAMPLE_CONFIG, "--voting-period", "-1", "--rpc", DEAD], 2, "--voting-period"),
    (["devnet", "fund", "garbage", "--rpc", "{rpc}"], 2, "40 hex digits"),
    (["devnet", "fund", "garbage", "--rpc", DEAD], 2, "40 hex digits"),
    (["devnet", "fund", ADDR, "--rpc", DEAD], 3, "--rpc URL"),
    (["devnet", "fund", ADDR, "--rpc", "notaurl"], 2, URL),
    (["devnet", "fund", ADDR, "--rpc", "{rpc}", "--eth", "-1"], 2, "N > 0"),
    (["devnet", "fund", ADDR, "--rpc", DEAD, "--eth", "0"], 2, "N > 0"),
    (["devnet", "genesis", "--scale-bits", "99", "--ipfs", DEAD], 2, "scale_bits"),
    (["devnet", "genesis", "--ipfs", "notaurl"], 2, "/ip4/127.0.0.1/tcp/5001/http"),
    (["devnet", "genesis", "--ipfs", "{http}"], 3, "IPFS"),
    (["devnet", "genesis", "--task", "nope", "--ipfs", DEAD], 2, "digits, breast_cancer"),
    (["devnet", "genesis", "--task", "csv:/nonexistent:y", "--ipfs", DEAD], 2, "csv:PATH:LABEL"),
    (["devnet", "config", "--member", "garbage", "--genesis", "{junk}"], 2, "devnet genesis"),
    (["devnet", "config", "--member", "garbage", "--genesis", "{dir}"], 2, "devnet genesis"),
    (["devnet", "config", "--member", "garbage", "--genesis", EXAMPLE_GENESIS], 2, "0xADDRESS:0xENC_KEY"),
    (["devnet", "config", "--member", "{file}", "--genesis", EXAMPLE_GENESIS], 2, "address and enc_key"),
    (["devnet", "config", "--member", ADDR + ":0x" + "42" * 32, "--genesis", EXAMPLE_GENESIS, "--reward-eth", "x"],
     2, "--reward-eth 1.5"),
    (["devnet", "config", "--member", ADDR + ":0x" + "42" * 32, "--genesis", EXAMPLE_GENESIS, "--rule", "nope",
      "--out", "{dir}/fed.json"], 2, "nothing was written"),
    # ---------------------------------------------------------------- peer
    (["peer", "init", "--state-dir", "{file}", "--password-file", "{pw}"], 2, "--state-dir names a folder"),
    (["peer", "init", "--state-dir", "{dir}", "--announce", "garbage"], 2, "--announce"),
    (["peer", "init", "--state-dir", "{dir}", "--password-file", "{dir}"], 2, "a text file"),
    (["peer", "id", "--state-dir", "{dir}"], 1, "peer init"),
    (["peer", "id", "--state-dir", "{file}"], 1, "peer init"),
    (["peer", "run", "--config", "{badtoml}"], 2, "TOML"),
    (["peer", "run", "--config", "{junk}"], 2, "TOML"),
    (["peer", "run", "--config", "{dir}"], 2, "TOML file"),
    (["peer", "run", "--config", "/nonexistent/peer.toml"], 2, "peer.toml"),
    (["peer", "run", "--state-dir", "{state}", "--password-file", "{pw}", "--contract", ADDR, "--rpc", "{rpc}",
      "--bootstrap", "garbage"], 2, "/p2p/PEER_ID"),
    (["peer", "run", "--state-dir", "{state}", "--password-file", "{pw}", "--contract", "0x12"], 2, "peer run --help"),
    (["peer", "run", "--state-dir", "{state}", "--password-file", "{pw}", "--contract", ADDR, "--rpc", "notaurl",
      "--no-gossip", "--wait-for-services", "0"], 2, "peer run --help"),
    (["peer", "run", "--state-dir", "{state}", "--password-file", "{pw}", "--contract", ADDR, "--rpc", "{http}",
      "--ipfs", DEAD, "--no-gossip", "--wait-for-services", "0"], 3, RPC),
    (["peer", "run", "--state-dir", "{state}", "--password-file", "{pw}", "--contract", REVERTS, "--rpc", "{rpc}",
      "--ipfs", "{ipfs}", "--no-gossip", "--wait-for-services", "0"], 2, CONTRACT),
    (["peer", "stake", "--amount-eth", "-1", "--governor", ADDR, "--key", KEY], 2, "--amount-eth 1"),
    (["peer", "stake", "--amount-eth", "1", "--rpc", DEAD, "--governor", ADDR, "--key", KEY], 3, RPC),
    (["peer", "withdraw", "--rpc", "{rpc}", "--governor", REVERTS, "--key", KEY], 2, GOVERNOR),
    (["peer", "withdraw", "--rpc", "notaurl", "--governor", ADDR, "--key", KEY], 2, URL),
    # ---------------------------------------------------------------- audit
    (["audit", "--rpc", "notaurl", "--contract", ADDR, "rounds"], 2, URL),
    (["audit", "rounds", "--rpc", "{http}", "--contract", ADDR], 3, RPC),
    (["audit", "rounds", "--rpc", DEAD, "--contract", ADDR], 3, RPC),
    (["audit", "rounds", "--rpc", "{html}", "--contract", ADDR], 3, RPC),
    (["gov", "list", "--rpc", "{html}", "--governor", ADDR], 3, RPC),
    (["audit", "rounds", "--rpc", "{rpc}", "--contract", REVERTS], 2, CONTRACT),
    (["audit", "rounds", "--rpc", "{rpc}", "--contract", EMPTY], 2, CONTRACT),
    (["audit", "rounds", "--rpc", "{rpc}", "--contract", NO_CODE], 2, CONTRACT),
    (["audit", "rounds", "--rpc", "{rpc}", "--contract", "0x12"], 2, "devnet deploy"),
    (["audit", "rounds", "--rpc", "{rpc}"], 2, "--contract"),
    (["audit", "rounds", "--rpc", "{rpc}", "--contract", "{fed}", "--cache-dir", "{file}"], 2, FOLDER),
    (["audit", "rounds", "--rpc", "{rpc}", "--contract", "{fed}", "--cache-dir", "{file}/sub"], 2, "writable folder"),
    (["audit", "rounds", "--ipfs", "ftp://x", "--contract", ADDR], 2, "/ip4/127.0.0.1/tcp/5001/http"),
    (["audit", "round", "one", "--contract", ADDR], 2, USAGE),
    (["audit", "round", "99", "--rpc", "{rpc}", "--contract", "{fed}", "--cache-dir", "{dir}"], 1, "rounds are"),
    (["audit", "peer", ADDR, "--rpc", "{rpc}", "--contract", "{fed}", "--ipfs", "{http}", "--cache-dir", "{dir}"],
     3, "IPFS"),
    (["audit", "peer", ADDR, "--rpc", "{rpc}", "--contract", "{fed}", "--ipfs", DEAD, "--cache-dir", "{dir}"],
     3, "IPFS"),
    (["audit", "verify", "--rounds", "x..y", "--contract", ADDR], 2, "--rounds"),
    (["audit", "verify", "--rpc", "{rpc}", "--contract", "{fed}", "--cache-dir", "{dir}", "--key-file", "{junk}"],
     1, "--state-dir"),
    (["audit", "verify", "--rpc", "{rpc}", "--contract", "{fed}", "--cache-dir", "{dir}", "--key-file", "{dir}"],
     2, "hex X25519 private key"),
    (["audit", "export", "--format", "xml", "--contract", ADDR], 2, "--format json"),
    (["audit", "export", "--rpc", DEAD, "--contract", ADDR], 3, RPC),
    (["audit", "report", "--rpc", "{rpc}", "--contract", REVERTS, "--no-ipfs"], 2, CONTRACT),
    (["audit", "report", "--verification", "{junk}", "--key-file", "{file}", "--contract", ADDR], 2, "drop"),
    (["audit", "governance", "--rpc", "{rpc}", "--contract", REVERTS], 2, CONTRACT),
    (["audit", "governance", "--rpc", "{rpc}", "--contract", "{fed}", "--cache-dir", "{file}"], 2, FOLDER),
    # ---------------------------------------------------------------- rewards
    (["rewards", "show", "--rounds", "garbage", "--address", ADDR, "--contract", ADDR], 2, "--rounds"),
    (["rewards", "show", "--address", ADDR, "--rpc", DEAD, "--contract", ADDR], 3, RPC),
    (["rewards", "show", "--address", ADDR, "--rpc", "{rpc}", "--contract", EMPTY], 2, CONTRACT),
    (["rewards", "show", "--state-dir", "{file}", "--password-file", "{pw}", "--contract", ADDR], 1, "peer init"),
    (["rewards", "claim", "--key", "garbage", "--contract", ADDR], 2, "64 hex digits"),
    (["rewards", "claim", "--rpc", "notaurl", "--key", KEY, "--contract", ADDR], 2, URL),
    # ---------------------------------------------------------------- gov
    (["gov", "vote", "one", "--governor", ADDR], 2, USAGE),
    (["gov", "vote", "1", "--rpc", "notaurl", "--governor", ADDR, "--key", KEY], 2, URL),
    (["gov", "execute", "1", "--rpc", "{http}", "--governor", ADDR, "--key", KEY], 3, RPC),
    (["gov", "list", "--rpc", DEAD, "--governor", ADDR], 3, RPC),
    (["gov", "list", "--rpc", "{rpc}", "--governor", REVERTS], 2, GOVERNOR),
    (["gov", "list", "--rpc", "{rpc}"], 2, "--governor"),
    (["gov", "show", "1", "--rpc", "{rpc}", "--governor", EMPTY], 2, GOVERNOR),
    (["gov", "slash", "--evidence", "{junk}", "--governor", ADDR, "--key", KEY], 2, "docs/governance.md"),
    (["gov", "slash", "--envelope", "{file}", "--governor", ADDR, "--key", KEY], 2, "docs/governance.md"),
    (["gov", "slash", "--evidence", "{badtx}", "--governor", ADDR, "--key", KEY], 2, "docs/governance.md"),
    (["gov", "propose", "admit", "--account", ADDR, "--enc-key", "garbage", "--rpc", "{rpc}", "--governor", REVERTS,
      "--key", KEY], 2, "64 hex digits"),
    (["gov", "propose", "remove", "--account", ADDR, "--rpc", "{rpc}", "--governor", REVERTS, "--key", KEY],
     2, GOVERNOR),
    (["gov", "vote", "1", "--rpc", "{rpc}", "--governor", EMPTY, "--key", KEY], 2, GOVERNOR),
    (["gov", "propose", "remove", "--account", "0x12", "--governor", ADDR, "--key", KEY], 2, "40 hex digits"),
    (["gov", "propose", "admit", "--account", "garbage", "--enc-key", "0x" + "42" * 32, "--governor", ADDR, "--key",
      KEY], 2, "40 hex digits"),
    (["gov", "propose", "admit", "--account", ADDR, "--enc-key", "0x" + "42" * 32, "--weight", "0", "--governor",
      ADDR, "--key", KEY], 2, "--weight 1.0"),
    (["gov", "propose", "admit", "--account", ADDR, "--enc-key", "0x" + "42" * 32, "--stake-eth", "-1",
      "--governor", ADDR, "--key", KEY], 2, "--stake-eth 1.5"),
    (["gov", "propose", "admit", "--account", ADDR, "--enc-key", "0x" + "42" * 32, "--stake-eth", "1e80",
      "--governor", ADDR, "--key", KEY], 2, "--stake-eth 1.5"),
    (["gov", "propose", "add-auditor", "--account", "nope", "--enc-key", "0x" + "42" * 32, "--governor", ADDR,
      "--key", KEY], 2, "40 hex digits"),
    (["gov", "propose", "param", "--name", "pass_bps", "--value", "-5", "--governor", ADDR, "--key", KEY], 2,
     "non-negative integer"),
    (["gov", "propose", "add-auditor", "--account", ADDR, "--enc-key", "0x12", "--rpc", "{rpc}", "--governor",
      REVERTS, "--key", KEY], 2, "64 hex digits"),
    (["gov", "propose", "remove-auditor", "--account", ADDR, "--rpc", DEAD, "--governor", ADDR, "--key", KEY],
     3, RPC),
    (["gov", "propose", "param", "--name", "nope", "--value", "1", "--governor", ADDR, "--key", KEY], 2, "one of"),
    (["gov", "propose", "params", "--quorum-bps", "1", "--rpc", "{rpc}", "--governor", REVERTS, "--key", KEY],
     2, GOVERNOR),
    (["gov", "propose", "params", "--rule", "nope", "--rpc", "notaurl", "--governor", ADDR, "--key", KEY], 2, URL),
]


class HtmlPage(http.server.BaseHTTPRequestHandler):
    """Answers every request with 200 and an HTML page (a web server where a JSON-RPC node was expected)."""

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = b"<html><body>hello</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST

    def log_message(self, *args) -> None:
        pass
