#!/usr/bin/env bash
# A federation across "machines": Linux network namespaces on one host, one address each on a bridge.
#
#   sudo scripts/multihost.sh run    # up + run ROUNDS rounds + audit verify + checks, then down (exit 0 = all good)
#   sudo scripts/multihost.sh up     # namespaces, chain/IPFS host, institutions' IPFS nodes, keys, deploy, fund
#   sudo scripts/multihost.sh down   # stop everything it started and delete the namespaces (idempotent)
#
# Machines (namespace = address on the bridge $MH_SUBNET.0/24):
#   chain   .1      anvil + the convener's IPFS node   (fedledger devnet up --host)
#   instN   .1N     the institution's IPFS node + its peer (fedledger devnet up --ipfs-only; fedledger peer run)
#   audit   .30     the auditor                         (fedledger audit verify)
# Every step is the `fedledger` command an operator types on that machine (README "Several machines"); this
# script only adds the plumbing (namespaces, passing files between "machines", waiting, checking).
#
# Settings (environment): MH_ROUNDS (3), MH_INSTITUTIONS (3), MH_PREFIX (flmh: namespace/bridge names),
# MH_SUBNET (10.231.0), MH_DIR (work dir, default /tmp/fedledger-$MH_PREFIX), MH_TIMEOUT (s for the rounds, 600),
# MH_BOOTSTRAP (1 = also pass --bootstrap; default 0: peers find each other from the ledger's announcements).
# MH_RULE (trimmed_mean), MH_COMMIT_PERIOD (300 s).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FL="$ROOT/.venv/bin/fedledger"
PY="$ROOT/.venv/bin/python"
PREFIX="${MH_PREFIX:-flmh}"
SUBNET="${MH_SUBNET:-10.231.0}"
ROUNDS="${MH_ROUNDS:-3}"
N="${MH_INSTITUTIONS:-3}"
DIR="${MH_DIR:-/tmp/fedledger-$PREFIX}"
TIMEOUT="${MH_TIMEOUT:-600}"
BOOTSTRAP="${MH_BOOTSTRAP:-0}"
BRIDGE="${PREFIX}-br"
CHAIN_IP="$SUBNET.1"
AUDIT_IP="$SUBNET.30"
# A round ends as soon as every member committed and a majority voted: the periods only bound a round with
# a missing member. Round 1 opens at deployment, so its commit period must cover the peers' start-up.
COMMIT_PERIOD="${MH_COMMIT_PERIOD:-300}"
RULE="${MH_RULE:-trimmed_mean}"   # 3 members: trimmed_mean/median with f=1 (auto picks dedup+rescale+nnm+centered_clipping)
GOSSIP_PORT=4001
SWARM_PORT=4002
export FEDLEDGER_PASSWORD="multihost-demo-password"   # the keystores' password (an operator would be prompted)
export PYTHONUNBUFFERED=1

say() { printf '[multihost %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { say "FAILED: $*"; exit 1; }
inst_ip() { echo "$SUBNET.$((10 + $1))"; }
ns() { echo "$PREFIX-$1"; }                      # namespace of a machine: chain, inst1.., audit
on() { local machine="$1"; shift; ip netns exec "$(ns "$machine")" "$@"; }   # run a command "on" a machine
json_field() { "$PY" -c 'import json,sys; print(json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])[sys.argv[2]])' "$1" "$2"; }
machines() { echo chain audit; for i in $(seq 1 "$N"); do echo "inst$i"; done; }

probe() {  # can we make namespaces here at all?
  [[ $EUID -eq 0 ]] || { echo "network namespaces need root (run with sudo)"; return 1; }
  command -v ip >/dev/null || { echo "iproute2 ('ip') is not installed"; return 1; }
  local probe_ns="${PREFIX}-probe$$"
  if ! ip netns add "$probe_ns" 2>/dev/null; then echo "'ip netns add' is not permitted here"; return 1; fi
  ip netns del "$probe_ns"
}

net_up() {
  say "network: bridge $BRIDGE, $SUBNET.0/24"
  ip link add "$BRIDGE" type bridge
  ip link set "$BRIDGE" up
  local machine addr i=0
  for machine in $(machines); do
    case "$machine" in chain) addr=$CHAIN_IP ;; audit) addr=$AUDIT_IP ;; inst*) addr=$(inst_ip "${machine#inst}") ;; esac
    i=$((i + 1))
    ip netns add "$(ns "$machine")"
    ip link add "$PREFIX-v$i" type veth peer name eth0 netns "$(ns "$machine")"
    ip link set "$PREFIX-v$i" master "$BRIDGE" up
    on "$machine" ip addr add "$addr/24" dev eth0
    on "$machine" ip link set eth0 up
    on "$machine" ip link set lo up
    say "  $machine = $addr (namespace $(ns "$machine"))"
  done
}

institution_up() {  # on institution $1's machine: its own IPFS node (peered with the chain host's) and keys
  local i="$1" chain_swarm="$2" ip; ip=$(inst_ip "$1")
  mkdir -p "$DIR/inst$i"
  say "institution $i: fedledger devnet up --ipfs-only --host $ip --ipfs-peer <chain host's swarm address>"
  on "inst$i" "$FL" devnet up --ipfs-only --host "$ip" --swarm-port "$SWARM_PORT" \
    --state-dir "$DIR/inst$i/ipfs" --ipfs-peer "$chain_swarm" --detach --json > "$DIR/inst$i/ipfs.json"
  say "institution $i: fedledger peer init --announce /ip4/$ip/tcp/$GOSSIP_PORT"
  on "inst$i" "$FL" peer init --state-dir "$DIR/inst$i/node" --announce "/ip4/$ip/tcp/$GOSSIP_PORT" \
    --json > "$DIR/inst$i/identity.json"
}

institution_connect() {  # on institution $1's machine: keep its IPFS node connected to the other institutions'
  local i="$1" j others=()
  for j in $(seq 1 "$N"); do [[ $j == "$i" ]] || others+=("$(json_field "$DIR/inst$j/ipfs.json" ipfs_swarm)"); done
  say "institution $i: fedledger devnet connect <the other institutions' swarm addresses>"
  on "inst$i" "$FL" devnet connect "${others[@]}" --state-dir "$DIR/inst$i/ipfs" > "$DIR/inst$i/connect.out"
}

in_parallel() {  # run the commands in "$@" (separated by ';;') at once; fail if any failed
  local pids=() pid failed=0 cmd=() word
  for word in "$@" ';;'; do
    if [[ "$word" == ';;' ]]; then "${cmd[@]}" & pids+=("$!"); cmd=(); else cmd+=("$word"); fi
  done
  for pid in "${pids[@]}"; do wait "$pid" || failed=$((failed + 1)); done
  (( failed == 0 )) || die "$failed step(s) failed (see above)"
}

services_up() {
  mkdir -p "$DIR/chain" "$DIR/audit"
  say "chain host: fedledger devnet up --host $CHAIN_IP"
  on chain "$FL" devnet up --host "$CHAIN_IP" --swarm-port "$SWARM_PORT" --state-dir "$DIR/chain/devnet" \
    --detach --json > "$DIR/chain/devnet.json"
  local chain_swarm i steps=() connects=()
  chain_swarm=$(json_field "$DIR/chain/devnet.json" ipfs_swarm)
  for i in $(seq 1 "$N"); do steps+=(institution_up "$i" "$chain_swarm" ';;'); connects+=(institution_connect "$i" ';;'); done
  say "chain host: fedledger devnet genesis --task digits;  auditor: fedledger peer init"
  in_parallel "${steps[@]}" genesis ';;' auditor_init
  in_parallel "${connects[@]}"
}

auditor_init() { on audit "$FL" peer init --state-dir "$DIR/audit/node" --json > "$DIR/audit/identity.json"; }
genesis() { on chain "$FL" devnet genesis --task digits --state-dir "$DIR/chain/devnet" > "$DIR/chain/genesis.json"; }

deploy() {
  local members=() i
  for i in $(seq 1 "$N"); do members+=(--member "$DIR/inst$i/identity.json"); done
  say "chain host: fedledger devnet config ($RULE f=1), deploy, fund"
  on chain "$FL" devnet config "${members[@]}" --auditor "$DIR/audit/identity.json" \
    --genesis "$DIR/chain/genesis.json" --rule "$RULE" --f 1 --commit-period "$COMMIT_PERIOD" --vote-period 60 \
    --reward-eth 1 --funding-eth 100 --out "$DIR/chain/federation.json" --force >&2
  on chain "$FL" devnet deploy --config "$DIR/chain/federation.json" --state-dir "$DIR/chain/devnet" \
    --json > "$DIR/chain/deployed.json"
  local addrs=()
  for i in $(seq 1 "$N"); do addrs+=("$(json_field "$DIR/inst$i/identity.json" address)"); done
  on chain "$FL" devnet fund "${addrs[@]}" --eth 10 --state-dir "$DIR/chain/devnet" >&2
  say "federation $(json_field "$DIR/chain/deployed.json" contract) at block $(json_field "$DIR/chain/deployed.json" deploy_block)"
}

peers_run() {
  local contract block i
  contract=$(json_field "$DIR/chain/deployed.json" contract)
  block=$(json_field "$DIR/chain/deployed.json" deploy_block)
  : > "$DIR/peer.pids"
  for i in $(seq 1 "$N"); do
    local ip; ip=$(inst_ip "$i")
    local extra=()
    if [[ "$BOOTSTRAP" == 1 ]]; then
      local j; for j in $(seq 1 "$N"); do
        [[ $j == "$i" ]] || extra+=(--bootstrap "$(json_field "$DIR/inst$j/identity.json" multiaddr)")
      done
    fi
    say "institution $i: fedledger peer run --listen/--announce /ip4/$ip/tcp/$GOSSIP_PORT --max-rounds $ROUNDS"
    on "inst$i" "$FL" peer run --state-dir "$DIR/inst$i/node" --name "inst$i" \
      --rpc "http://$CHAIN_IP:8545" --contract "$contract" --from-block "$block" \
      --ipfs "$(json_field "$DIR/inst$i/ipfs.json" ipfs_api)" --task digits --partition iid --num-partitions "$N" \
      --partition-index "$((i - 1))" --epochs 1 --listen "/ip4/$ip/tcp/$GOSSIP_PORT" --announce "/ip4/$ip/tcp/$GOSSIP_PORT" \
      "${extra[@]}" --max-rounds "$ROUNDS" --json > "$DIR/inst$i/peer.log" 2> "$DIR/inst$i/peer.err" &
    echo "$!" >> "$DIR/peer.pids"
  done
  local deadline=$((SECONDS + TIMEOUT)) pid failed=0
  for pid in $(cat "$DIR/peer.pids"); do
    while kill -0 "$pid" 2>/dev/null; do
      (( SECONDS < deadline )) || die "peers still running after ${TIMEOUT}s (logs in $DIR/inst*/peer.log)"
      sleep 1
    done
    wait "$pid" || failed=$((failed + 1))
  done
  (( failed == 0 )) || die "$failed peer(s) exited non-zero (see $DIR/inst*/peer.err)"
}

audit() {
  local contract; contract=$(json_field "$DIR/chain/deployed.json" contract)
  say "auditor: fedledger audit verify (from $AUDIT_IP)"
  on audit "$FL" audit --rpc "http://$CHAIN_IP:8545" --contract "$contract" --ipfs "/ip4/$CHAIN_IP/tcp/5001/http" \
    verify --state-dir "$DIR/audit/node" --json > "$DIR/audit/verify.json" || die "audit verify found mismatches: $DIR/audit/verify.json"
}

check() {  # every round finalized at every peer, and the others' updates came by gossip, not from IPFS
  "$PY" "$ROOT/scripts/multihost_check.py" --rounds "$ROUNDS" --verify "$DIR/audit/verify.json" "$DIR"/inst*/peer.log
}

down() {
  local machine pid
  if [[ -f "$DIR/peer.pids" ]]; then
    for pid in $(cat "$DIR/peer.pids"); do kill -TERM "$pid" 2>/dev/null || true; done
    rm -f "$DIR/peer.pids"
  fi
  for machine in $(machines); do
    local state
    case "$machine" in chain) state="$DIR/chain/devnet" ;; inst*) state="$DIR/$machine/ipfs" ;; *) continue ;; esac
    if [[ -f "$state/services.json" ]]; then
      if ip netns list | grep -qw "$(ns "$machine")"; then on "$machine" "$FL" devnet down --state-dir "$state" >&2 || true
      else "$FL" devnet down --state-dir "$state" >&2 || true; fi
    fi
  done
  for machine in $(machines); do
    if ip netns list | grep -qw "$(ns "$machine")"; then
      for pid in $(ip netns pids "$(ns "$machine")"); do kill -KILL "$pid" 2>/dev/null || true; done  # leftovers of ours
      ip netns del "$(ns "$machine")"
    fi
  done
  ip link show "$BRIDGE" >/dev/null 2>&1 && ip link del "$BRIDGE"
  say "down: namespaces $PREFIX-* and bridge $BRIDGE removed"
}

up() {
  local why; why=$(probe) || { echo "SKIP: $why" >&2; exit 77; }
  down >/dev/null 2>&1 || true
  rm -rf "$DIR"; mkdir -p "$DIR"
  net_up
  services_up
  deploy
}

trap 'exit 130' INT TERM   # Ctrl-C / kill: the EXIT trap below tears down
case "${1:-}" in
  up)
    trap 'status=$?; if (( status != 0 && status != 77 )); then say "up failed: tearing down"; down; fi' EXIT
    up
    say "up: work dir $DIR; \`$0 down\` removes everything"
    ;;
  down) down ;;
  run)
    trap 'status=$?; (( status == 77 )) || down; exit $status' EXIT
    up
    started=$SECONDS
    peers_run
    audit
    check
    say "ok: $ROUNDS rounds across $N institutions in $((SECONDS - started)) s"
    ;;
  probe) probe && echo "network namespaces: ok" ;;
  *) echo "usage: $0 up|down|run|probe" >&2; exit 2 ;;
esac
