"""`fedledger devnet up --host ADDR` (services bind and advertise ADDR) and `fedledger devnet fund`."""
from __future__ import annotations

import json
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from eth_account import Account
from test_devnet_cli import _services, fedledger, rpc, state_dir  # noqa: F401  (fixtures shared with the devnet CLI tests)


def _interface_address() -> str | None:
    """A non-loopback IPv4 address of this machine (what another machine would reach), if any."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("192.0.2.1", 9))  # no packet is sent; the kernel picks the outgoing interface
        except OSError:
            return None
        address = sock.getsockname()[0]
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def test_up_on_a_host_address_then_fund(state_dir: Path, tmp_path: Path) -> None:  # noqa: F811
    host = _interface_address()
    if host is None:
        pytest.skip("no non-loopback IPv4 interface to bind the devnet to")
    up = fedledger("devnet", "up", "--host", host, "--chain-port", "0", "--ipfs-port", "0",
                   "--state-dir", str(state_dir), "--detach", cwd=tmp_path)
    assert up.returncode == 0, up.stderr
    services = _services(state_dir)
    rpc_url = services["chain"]["url"]
    assert rpc_url.startswith(f"http://{host}:") and services["ipfs"]["url"].startswith(f"/ip4/{host}/tcp/")
    assert services["ipfs"]["extra"]["swarm"].startswith(f"/ip4/{host}/tcp/")
    assert rpc_url in up.stdout
    assert int(rpc(rpc_url, "eth_chainId"), 16) == 31337  # answers on the host address
    with socket.socket() as probe:  # and not on loopback
        assert probe.connect_ex(("127.0.0.1", services["chain"]["port"])) != 0

    members = [Account.create().address for _ in range(2)]
    funded = fedledger("devnet", "fund", *members, "--eth", "2.5", "--state-dir", str(state_dir), cwd=tmp_path)
    assert funded.returncode == 0, funded.stderr
    lines = funded.stdout.strip().splitlines()
    assert len(lines) == 2
    for member, line in zip(members, lines):
        assert line.startswith(member) and "balance 2.5 ETH" in line
        assert int(rpc(rpc_url, "eth_getBalance", member, "latest"), 16) == 25 * 10**17
    again = fedledger("devnet", "fund", members[0], "--rpc", rpc_url, cwd=tmp_path)  # default 10 ETH, adds up
    assert again.returncode == 0 and "balance 12.5 ETH" in again.stdout, again.stderr

    bad = fedledger("devnet", "fund", members[0], "0x1234", "--rpc", rpc_url, cwd=tmp_path)
    assert bad.returncode != 0 and "'0x1234' is not an Ethereum address" in bad.stderr
    assert "Traceback" not in bad.stderr
    assert int(rpc(rpc_url, "eth_getBalance", members[0], "latest"), 16) == 125 * 10**17  # nothing sent


class _MainnetLike(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        reply = json.dumps({"jsonrpc": "2.0", "id": body["id"], "result": "0x1"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: object) -> None:
        pass


def test_fund_refuses_a_chain_that_is_not_a_devnet(tmp_path: Path) -> None:
    server = HTTPServer(("127.0.0.1", 0), _MainnetLike)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        result = fedledger("devnet", "fund", Account.create().address, "--rpc", url, cwd=tmp_path)
    finally:
        server.shutdown()
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert re.search(r"chain 1 at .* is not a devnet", result.stderr), result.stderr
