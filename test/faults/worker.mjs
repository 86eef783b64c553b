/**
 * One role of the store-and-forward fault suite, as a real process the test
 * can kill -9 (plain .mjs over the built dist/: no build step of its own).
 *
 *   relay     <dataDir> <port>                          prints READY <multiaddr>
 *   recipient <dataDir> <port> [relayAddr]              prints READY <multiaddr>, then GOT <id> per query received
 *   sender    <dataDir> <to> <toAddr> <count> <mode> <ledger> [concurrency] [marker]
 *             sends queries seq 0..count-1 (resuming after the last seq in the ledger),
 *             appends "seq id status" to the ledger once each send resolved; prints DONE.
 *             A "retry" line on stdin retries the recipient's outbox now (the test writes it once
 *             a killed peer is back, rather than wait for the outbox's next backoff)
 *
 * Everything listens on and dials 127.0.0.1 only; mDNS stays off.
 */
import { appendFileSync, existsSync, readFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { createMoltNode } from '../../dist/src/index.js'
import { createRelayNode } from '../../dist/src/relay/index.js'

const [role, ...args] = process.argv.slice(2)
const loopbackOnly = { connectionManager: { allow: ['/ip4/127.0.0.1'], inboundConnectionThreshold: 10_000 } }
const say = (line) => { process.stdout.write(line + '\n') }

async function relay ([dataDir, port]) {
  const node = await createRelayNode({ dataDir, listen: [`/ip4/127.0.0.1/tcp/${port}`], libp2p: loopbackOnly, mailbox: { senderRate: 100_000, senderBurst: 100_000 } })
  say(`READY ${node.getMultiaddrs()[0]}`)
  const stop = () => { node.stop({ drainMs: 0 }).finally(() => process.exit(0)) }
  process.on('SIGTERM', stop)
}

async function recipient ([dataDir, port, relayAddr]) {
  const node = await createMoltNode({
    dataDir,
    listen: port === '-' ? [] : [`/ip4/127.0.0.1/tcp/${port}`],
    relays: relayAddr != null ? [relayAddr] : [],
    libp2p: loopbackOnly,
    heartbeatInterval: 0
  })
  node.addEventListener('message', (evt) => {
    if (evt.detail.message.op === 'query') say(`GOT ${evt.detail.message.id}`)
  })
  if (relayAddr != null) {
    while (!node.getMultiaddrs().some(a => a.toString().includes('p2p-circuit'))) await new Promise(resolve => setTimeout(resolve, 50))
  }
  say(`READY ${node.getMultiaddrs().map(String).find(a => port === '-' ? a.includes('p2p-circuit') : !a.includes('p2p-circuit'))}`)
  process.on('SIGTERM', () => { node.stop().finally(() => process.exit(0)) })
}

async function sender ([dataDir, to, toAddr, count, mode, ledger, concurrency = '64', marker]) {
  // listens nowhere: a sender with a TCP address would be dialled back directly once the
  // recipient learnt it, and the relay scenario's messages would stop crossing the relay it kills
  const node = await createMoltNode({ dataDir, listen: [], libp2p: loopbackOnly, heartbeatInterval: 0 })
  createInterface({ input: process.stdin }).on('line', (line) => {
    if (line === 'retry') node.retryOutbox(to).catch(() => {})
  })
  await node.libp2p.peerStore.merge((await import('@libp2p/peer-id')).peerIdFromString(to), { multiaddrs: [(await import('@multiformats/multiaddr')).multiaddr(toAddr)] })
  // resume: every seq without a ledger line (one killed mid-send was never promised) is sent again
  const done = new Set()
  if (existsSync(ledger)) {
    for (const line of readFileSync(ledger, 'utf8').split('\n')) if (line !== '') done.add(Number(line.split(' ')[0]))
  }
  const todo = Array.from({ length: Number(count) }, (_, seq) => seq).filter(seq => !done.has(seq))
  const worker = async () => {
    while (todo.length > 0) {
      const seq = todo.shift()
      const result = await node.send(to, { op: 'query', p: { domain: 'fault', seq, ...(marker != null ? { marker } : {}) } }, { delivery: mode })
      // the ledger holds only what send() promised: delivered, stored or queued
      appendFileSync(ledger, `${seq} ${result.id} ${result.status}\n`)
    }
  }
  await Promise.all(Array.from({ length: Number(concurrency) }, worker))
  say('DONE')
  // keep running: queued messages are retried by this process's outbox
  process.on('SIGTERM', () => { node.stop().finally(() => process.exit(0)) })
}

const roles = { relay, recipient, sender }
if (roles[role] == null) {
  console.error(`usage: worker.mjs relay|recipient|sender …`)
  process.exit(2)
}
roles[role](args).catch((err) => {
  console.error(err)
  process.exit(1)
})
