/**
 * Example 3 — offline delivery through a relay mailbox. A relay runs; Bob
 * reserves a slot on it (so his address goes through it) and goes offline;
 * Alice sends him a message: it is sealed to Bob's key and stored in the
 * relay's mailbox (the relay cannot read it); Alice goes offline too; Bob
 * comes back, fetches his mailbox and gets the message. Ends with one line:
 *   example offline-delivery: stored in 1 relay mailbox while bob was offline; bob got "see you tomorrow" via mailbox
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createMoltNode, createRelayNode, type MoltNode } from '../../src/index.js'

const dirs: string[] = []
const dir = async (name: string): Promise<string> => {
  const d = await mkdtemp(join(tmpdir(), `molt-example-${name}-`))
  dirs.push(d)
  return d
}
// everything on 127.0.0.1; no mDNS
const local = { connectionManager: { allow: ['/ip4/127.0.0.1'] } as any }

const relay = await createRelayNode({ dataDir: await dir('relay'), listen: ['/ip4/127.0.0.1/tcp/0'], libp2p: local })
const relayAddress = relay.getMultiaddrs()[0].toString()
const bobDir = await dir('bob')
try {
  // Bob: reachable only through the relay, like an agent behind NAT
  let bob: MoltNode = await createMoltNode({ dataDir: bobDir, listen: [], relays: [relayAddress], agent: { name: 'bob' }, libp2p: local })
  while (!bob.getMultiaddrs().some(a => a.toString().includes('/p2p-circuit'))) await new Promise(resolve => setTimeout(resolve, 50))
  const bobAddress = bob.getMultiaddrs().map(String).find(a => a.includes('/p2p-circuit')) as string
  const bobId = bob.peerId

  const alice = await createMoltNode({ dataDir: await dir('alice'), listen: ['/ip4/127.0.0.1/tcp/0'], agent: { name: 'alice' }, libp2p: local })
  await alice.ping(bobAddress) // Alice has met Bob: she knows his relayed address
  await bob.stop()

  const result = await alice.send(bobId, { op: 'query', p: { domain: 'chat', text: 'see you tomorrow' } }, { delivery: 'exactly-once' })
  if (result.status !== 'stored') throw new Error(`expected the message to be stored, got ${result.status}`)
  await alice.stop()

  bob = await createMoltNode({ dataDir: bobDir, listen: [], relays: [relayAddress], agent: { name: 'bob' }, libp2p: local })
  let text: unknown
  let route: string | undefined
  for await (const entry of bob.messages({ after: 0, signal: AbortSignal.timeout(20_000) })) {
    if (entry.message.op === 'query' && entry.message.id === result.id) {
      text = entry.message.p.text
      route = entry.route
      break
    }
  }
  await bob.stop()
  process.stdout.write(`example offline-delivery: stored in ${result.mailboxes?.length ?? 0} relay mailbox while bob was offline; bob got ${JSON.stringify(text)} via ${route}\n`)
} finally {
  await relay.stop({ drainMs: 0 })
  await Promise.all(dirs.map(async d => rm(d, { recursive: true, force: true })))
}
