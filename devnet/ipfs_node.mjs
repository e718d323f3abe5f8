// A local IPFS node serving the Kubo RPC API on loopback: ipfs-core + ipfs-http-server (js-ipfs).
//
// Started by devnet/ipfs.py, which copies this file next to .tools/node_modules so that the bare
// imports below resolve (ESM ignores NODE_PATH). Preload devnet/polyfill.cjs on Node 20.
//
//   node --require polyfill.cjs ipfs_node.mjs --repo DIR --api-port N [--swarm-port N] [--offline]
//
// Peering (like Kubo's Peering.Peers): the multiaddrs listed in DIR/fedledger-peering.json (a JSON array of
// /ip4/…/tcp/…/p2p/… strings, written by devnet/ipfs.py) are dialled at start and re-dialled every few
// seconds while not connected, so institutions' nodes find each other's blobs (bitswap asks connected peers
// only: there is no DHT here) and reconnect after a restart on either side. The file is re-read every time.
//
// Prints one JSON line per lifecycle event on stdout ({"event": "ready", ...} once the API listens)
// and stops gracefully on SIGTERM / SIGINT (API first, then the node, so the repo is closed cleanly).
import { create } from 'ipfs-core'
import { HttpApi } from 'ipfs-http-server'
import { writeFileSync, readFileSync, rmSync, mkdirSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import { multiaddr } from '@multiformats/multiaddr'

function parseArgs (argv) {
  const args = { offline: false, host: '127.0.0.1' }
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i]
    if (key === '--offline') args.offline = true
    else if (key === '--repo') args.repo = argv[++i]
    else if (key === '--api-port') args.apiPort = Number(argv[++i])
    else if (key === '--swarm-port') args.swarmPort = Number(argv[++i])
    else if (key === '--host') args.host = argv[++i]
    else if (key === '--api-host') args.apiHost = argv[++i]
    else if (key === '--parent-pid') args.parentPid = Number(argv[++i])
    else throw new Error(`unknown argument ${key}`)
  }
  if (!args.repo || !Number.isInteger(args.apiPort)) {
    throw new Error('usage: ipfs_node.mjs --repo DIR --api-port N [--swarm-port N] [--offline]')
  }
  return args
}

function emit (event, fields = {}) {
  process.stdout.write(JSON.stringify({ event, pid: process.pid, ...fields }) + '\n')
}

const args = parseArgs(process.argv.slice(2))
const apiHost = args.apiHost || args.host  // the API may stay on loopback while the swarm faces the network
const swarm = args.offline || !args.swarmPort ? [] : [`/ip4/${args.host}/tcp/${args.swarmPort}`]
const pidFile = join(args.repo, 'fedledger-node.pid')
const peeringFile = join(args.repo, 'fedledger-peering.json')
const PEERING_INTERVAL_MS = 3000

// Liveness as devnet/processes.py sees it: kill(pid, 0) succeeds for a zombie (exited, not yet reaped by its
// parent), so on Linux /proc/<pid>/stat's state 'Z' counts as dead; `marker` must be in the pid's command line
// (a recycled pid runs something else).
const HAVE_PROC = existsSync('/proc/self/stat')
function pidAlive (pid, marker) {
  try { process.kill(pid, 0) } catch (err) { if (err.code !== 'EPERM') return false }
  if (!HAVE_PROC) return true
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) return false
    return !marker || readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(marker)
  } catch { return false }  // gone between the two checks
}

// One node per repo: refuse while another live node holds it, otherwise claim it (a stale pid file from a
// killed node is simply overwritten; devnet/ipfs.py clears that node's stale repo.lock before starting us).
mkdirSync(args.repo, { recursive: true })
try {
  const other = Number(readFileSync(pidFile, 'utf8'))
  if (other && other !== process.pid) {
    if (pidAlive(other, 'ipfs_node.mjs')) {
      emit('error', { message: `repo ${args.repo} is in use by a running node (pid ${other})` })
      process.exit(3)
    }
  }
} catch {}
writeFileSync(pidFile, String(process.pid))
function releasePidFile () {
  try { if (Number(readFileSync(pidFile, 'utf8')) === process.pid) rmSync(pidFile, { force: true }) } catch {}
}

// Everything that would reach beyond loopback is switched off: no bootstrap peers, no mDNS,
// no WebRTC star, no delegate routers, no preload nodes.
let ipfs, api
try {
  ipfs = await create({
    repo: args.repo,
    offline: args.offline,
    preload: { enabled: false },
    silent: true,
    config: {
      Addresses: {
        Swarm: swarm,
        API: `/ip4/${apiHost}/tcp/${args.apiPort}`,
        Gateway: '',
        Delegates: []
      },
      Bootstrap: [],
      Discovery: { MDNS: { Enabled: false }, webRTCStar: { Enabled: false } },
      Routing: { Type: 'none' },
      Pubsub: { Enabled: true }
    }
  })

  api = new HttpApi(ipfs)
  await api.start()
} catch (err) {
  emit('error', { message: String(err && err.message ? err.message : err), code: err && err.code })
  releasePidFile()
  process.exit(1)
}
const { id } = await ipfs.id()
emit('ready', { id: id.toString(), api: `/ip4/${apiHost}/tcp/${args.apiPort}/http`, swarm })

let stopping = false
async function shutdown (signal) {
  if (stopping) return
  stopping = true
  emit('stopping', { signal })
  try {
    await api.stop()
    await ipfs.stop()
  } finally {
    releasePidFile()
    emit('stopped')
    process.exit(0)
  }
}
process.on('SIGTERM', () => shutdown('SIGTERM'))
process.on('SIGINT', () => shutdown('SIGINT'))

function peeringList () {
  try {
    const list = JSON.parse(readFileSync(peeringFile, 'utf8'))
    return Array.isArray(list) ? list.filter(a => typeof a === 'string') : []
  } catch { return [] }
}

const peeringState = new Map() // multiaddr -> last outcome ('connected' | error message), to log changes only
async function keepPeering () {
  if (stopping || args.offline) return
  let connected
  try {
    connected = new Set((await ipfs.swarm.peers()).map(p => p.peer.toString()))
  } catch { return }
  for (const addr of peeringList()) {
    const peerId = addr.split('/p2p/')[1]
    if (!peerId || peerId === id.toString()) continue
    let outcome = 'connected'
    if (!connected.has(peerId)) {
      try {
        await ipfs.swarm.connect(multiaddr(addr), { timeout: 5000 })
      } catch (err) {
        outcome = String(err && err.message ? err.message : err)
      }
    }
    if (peeringState.get(addr) !== outcome) {
      peeringState.set(addr, outcome)
      emit(outcome === 'connected' ? 'peering-connected' : 'peering-failed',
        outcome === 'connected' ? { addr } : { addr, message: outcome })
    }
  }
}
if (!args.offline) {
  keepPeering()
  setInterval(() => { keepPeering().catch(() => {}) }, PEERING_INTERVAL_MS).unref()
}

// A node started for a test or a foreground command must not outlive the process that started it.
if (args.parentPid) {
  setInterval(() => {
    if (!pidAlive(args.parentPid)) shutdown('parent-exit')
  }, 1000).unref()
}
