/**
 * Runs INSIDE a private network namespace (unshare -n, loopback only): a molt
 * relay, a recipient reachable only through it, and a sender, with iptables
 * dropping a random share of the packets to and from the relay's port. Sends
 * `count` at-least-once messages and prints one JSON line: how many send()
 * promised, how many distinct ones arrived, duplicates, seconds.
 *   node loss.mjs <loss 0..1> <count>
 */
import { execFileSync } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createMoltNode } from '../../dist/src/index.js'
import { createRelayNode } from '../../dist/src/relay/index.js'

const [loss, count] = [Number(process.argv[2]), Number(process.argv[3])]
const PORT = 4801
const dirs = []
const dir = async () => { const d = await mkdtemp(join(tmpdir(), 'molt-loss-')); dirs.push(d); return d }
const loopbackOnly = { connectionManager: { allow: ['/ip4/127.0.0.1'], inboundConnectionThreshold: 10_000 } }

for (const direction of ['--dport', '--sport']) {
  execFileSync('iptables', ['-A', 'INPUT', '-i', 'lo', '-p', 'tcp', direction, String(PORT), '-m', 'statistic', '--mode', 'random', '--probability', String(loss), '-j', 'DROP'])
}

const relay = await createRelayNode({ dataDir: await dir(), listen: [`/ip4/127.0.0.1/tcp/${PORT}`], libp2p: loopbackOnly })
const relayAddr = relay.getMultiaddrs()[0].toString()
const bob = await createMoltNode({ dataDir: await dir(), listen: [], relays: [relayAddr], libp2p: loopbackOnly, heartbeatInterval: 0 })
const got = new Map()
bob.addEventListener('message', (evt) => {
  if (evt.detail.message.op === 'query') got.set(evt.detail.message.id, (got.get(evt.detail.message.id) ?? 0) + 1)
})
const deadline = Date.now() + 60_000
while (!bob.getMultiaddrs().some(a => a.toString().includes('p2p-circuit'))) {
  if (Date.now() > deadline) throw new Error('no reservation')
  await new Promise(resolve => setTimeout(resolve, 50))
}
const circuit = bob.getMultiaddrs().map(String).find(a => a.includes('p2p-circuit'))
const alice = await createMoltNode({ dataDir: await dir(), listen: ['/ip4/127.0.0.1/tcp/0'], libp2p: loopbackOnly, heartbeatInterval: 0 })
const started = performance.now()
const ids = []
const statuses = {}
let next = 0
await Promise.all(Array.from({ length: 16 }, async () => {
  while (next < count) {
    const seq = next++
    const result = await alice.send(seq === 0 ? circuit : bob.peerId, { op: 'query', p: { domain: 'loss', seq } })
    ids.push(result.id)
    statuses[result.status] = (statuses[result.status] ?? 0) + 1
  }
}))
while (ids.some(id => !got.has(id)) && Date.now() < deadline + 120_000) await new Promise(resolve => setTimeout(resolve, 100))
const seconds = (performance.now() - started) / 1000
// the rules' own counters: proof that packets really were dropped
const dropped = execFileSync('iptables', ['-L', 'INPUT', '-v', '-x', '-n'], { encoding: 'utf8' })
  .split('\n').filter(line => line.includes('DROP')).reduce((sum, line) => sum + Number(line.trim().split(/\s+/)[0]), 0)
const result = {
  loss, dropped, promised: ids.length, delivered: ids.filter(id => got.has(id)).length,
  duplicates: [...got.values()].filter(n => n > 1).length, statuses, seconds
}
await Promise.allSettled([alice.stop(), bob.stop(), relay.stop({ drainMs: 0 })])
await Promise.all(dirs.map(async d => rm(d, { recursive: true, force: true })))
process.stdout.write(JSON.stringify(result) + '\n')
process.exit(0)
