/**
 * Disk-full scenarios of test/faults/disk-full.test.ts. Run only by that test,
 * inside `unshare -m -n` (a private mount and network namespace): `full` is a
 * small tmpfs mounted in that namespace only, `roomy` a larger one; both
 * disappear with the namespace. Real nodes over TCP on 127.0.0.1 (loopback
 * of the namespace), mDNS off. Prints one JSON line of findings at the end.
 *
 *   disk-full.mjs outbox  <full> <roomy>   an agent whose data dir fills up
 *   disk-full.mjs mailbox <full> <roomy>   a relay whose mailbox store fills up
 *   disk-full.mjs inbox   <full> <roomy>   a receiver whose inbox fills up
 */
import { openSync, writeSync, closeSync, unlinkSync, statfsSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import v8 from 'node:v8'
import vm from 'node:vm'
import { createMoltNode } from '../../dist/src/index.js'
import { createRelayNode } from '../../dist/src/relay/index.js'
import { openDatabase } from '../../dist/src/storage/index.js'
import { Outbox } from '../../dist/src/delivery/outbox.js'
import { MailboxStore } from '../../dist/src/services/mailbox/store.js'
import { resolveMailboxLimits } from '../../dist/src/services/mailbox/index.js'

const [scenario, full, roomy] = process.argv.slice(2)
const loopbackOnly = { connectionManager: { allow: ['/ip4/127.0.0.1'] } }
const crashes = []
process.on('unhandledRejection', (reason) => { crashes.push(`unhandledRejection: ${reason?.stack ?? reason}`) })
process.on('uncaughtException', (err) => { crashes.push(`uncaughtException: ${err?.stack ?? err}`) })

v8.setFlagsFromString('--expose-gc')
const gc = vm.runInNewContext('gc')
const heapMiB = () => { gc(); gc(); return Math.round(process.memoryUsage().heapUsed / 1024 / 1024 * 10) / 10 }
const freeBytes = (dir) => { const s = statfsSync(dir); return s.bavail * s.bsize }

/** Fill the file system holding `dir` to the last byte (ENOSPC), with one filler file */
function fill (dir) {
  const path = join(dir, 'filler')
  const fd = openSync(path, 'w')
  for (const size of [1024 * 1024, 4096, 1]) {
    const chunk = Buffer.alloc(size, 0x5a)
    try { for (;;) writeSync(fd, chunk) } catch (err) { if (err.code !== 'ENOSPC') throw err }
  }
  closeSync(fd)
  return () => { unlinkSync(path) }
}

/** The rejection of `promise` as { name, code, message }, or the resolved value as { result } */
async function settle (promise) {
  try {
    return { result: await promise }
  } catch (err) {
    return { name: err?.name, code: err?.code, message: err?.message }
  }
}

async function until (check, timeout, what) {
  const deadline = Date.now() + timeout
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(50)
  }
}

async function outbox () {
  const aliceDir = join(full, 'alice')
  // bob is offline: a PeerId whose address refuses connections, no relays: sends wait in alice's outbox
  const bob = await createMoltNode({ dataDir: join(roomy, 'bob'), listen: ['/ip4/127.0.0.1/tcp/0'], libp2p: loopbackOnly, heartbeatInterval: 0 })
  const bobId = bob.peerId.toString()
  const bobAddr = bob.getMultiaddrs()[0]
  await bob.stop()
  let alice = await createMoltNode({ dataDir: aliceDir, listen: ['/ip4/127.0.0.1/tcp/0'], libp2p: loopbackOnly, heartbeatInterval: 0 })
  await alice.libp2p.peerStore.merge(bob.peerId, { multiaddrs: [bobAddr] })
  const send = (n) => alice.send(bobId, { op: 'query', p: { domain: 'disk-full', n, pad: 'x'.repeat(2000) } })

  const queued = []
  const before = await settle(send(0))
  if (before.result?.status === 'queued') queued.push(before.result.id)
  const heapBefore = heapMiB()

  const free = fill(full)
  const freeWhenFull = freeBytes(full)
  const whileFull = []
  for (let n = 1; n <= 200; n++) {
    const r = await settle(send(n))
    if (r.result?.status === 'queued') queued.push(r.result.id)
    whileFull.push(r.result !== undefined ? { status: r.result.status } : r)
  }
  const whileFullCounts = count(whileFull)
  const outboxWhileFull = alice.outbox().map(e => e.id)
  const heapWhileFull = heapMiB()

  free()
  const afterFree = []
  for (let n = 201; n <= 220; n++) {
    const r = await settle(send(n))
    if (r.result?.status === 'queued') queued.push(r.result.id)
    afterFree.push(r.result !== undefined ? { status: r.result.status } : r)
  }
  const afterFreeCounts = count(afterFree)
  const heapAfter = heapMiB()
  await alice.stop()

  // nothing half-written: the LevelDB opens, and holds exactly the sends that resolved `queued`
  const db = await openDatabase(join(aliceDir, 'db'))
  const box = new Outbox(db, { maxMessages: 1_000_000, maxDeadLetters: 10 })
  await box.open()
  const reopened = box.pending().map(e => e.id)
  await db.close()
  // and the agent itself restarts on it
  alice = await createMoltNode({ dataDir: aliceDir, listen: ['/ip4/127.0.0.1/tcp/0'], libp2p: loopbackOnly, heartbeatInterval: 0 })
  const restarted = alice.outbox().map(e => e.id)
  await alice.stop()

  return { freeWhenFull, queued, whileFull: whileFullCounts, errors: [...new Set(whileFull.map(r => r.message).filter(Boolean))], outboxWhileFull, afterFree: afterFreeCounts, reopened, restarted, heap: { before: heapBefore, whileFull: heapWhileFull, after: heapAfter } }
}

async function mailbox () {
  const relayDir = join(full, 'relay')
  const relay = await createRelayNode({ dataDir: relayDir, listen: ['/ip4/127.0.0.1/tcp/0'], libp2p: loopbackOnly })
  const relayAddr = relay.getMultiaddrs()[0].toString()
  const bobDir = join(roomy, 'bob')
  const got = []
  const startBob = async () => {
    const node = await createMoltNode({ dataDir: bobDir, listen: [], relays: [relayAddr], libp2p: loopbackOnly, heartbeatInterval: 0 })
    node.addEventListener('message', (evt) => { if (evt.detail.message.op === 'query') got.push(evt.detail.message.p.n) })
    await until(() => node.getMultiaddrs().some(a => a.toString().includes('p2p-circuit')), 20_000, 'bob\'s reservation')
    return node
  }
  let bob = await startBob()
  const bobId = bob.peerId.toString()
  const circuit = bob.getMultiaddrs().find(a => a.toString().includes('p2p-circuit'))
  await bob.stop()

  const carol = await createMoltNode({ dataDir: join(roomy, 'carol'), listen: ['/ip4/127.0.0.1/tcp/0'], libp2p: loopbackOnly, heartbeatInterval: 0 })
  await carol.libp2p.peerStore.merge(bob.peerId, { multiaddrs: [circuit] })
  const send = async (n) => {
    const r = await settle(carol.send(bobId, { op: 'query', p: { domain: 'disk-full', n, pad: 'x'.repeat(2000) } }))
    return r.result !== undefined ? { n, status: r.result.status, refusals: r.result.refusals ?? [] } : { n, ...r }
  }
  const stored = []
  for (let n = 0; n < 5; n++) stored.push(await send(n))
  const heapBefore = heapMiB()

  const free = fill(full)
  const refused = []
  for (let n = 5; n < 105; n++) refused.push(await send(n))
  const outboxWhileFull = carol.outbox().length
  const relayWhileFull = relay.mailbox.stats()

  // the relay keeps serving: bob comes back while the disk is still full and fetches what was stored
  bob = await startBob()
  await until(() => [0, 1, 2, 3, 4].every(n => got.includes(n)), 20_000, 'bob\'s fetch of the stored boxes')
  await sleep(500) // the acks (deletes) are tried; on a full disk they are refused and the boxes stay
  const gotWhileFull = [...got].sort((a, b) => a - b)
  const relayAfterFetch = relay.mailbox.stats()
  await bob.stop()
  const heapWhileFull = heapMiB()

  free()
  const afterFree = []
  for (let n = 105; n < 110; n++) afterFree.push(await send(n))
  // carol's outbox retries the refused ones: deposited now
  await until(() => carol.outbox().length === 0, 30_000, 'carol\'s outbox to drain into the mailbox')
  bob = await startBob()
  await until(() => new Set(got).size >= 110, 30_000, 'bob to get all 110 messages')
  await until(() => relay.mailbox.stats().messages === 0, 20_000, 'bob\'s acks to empty the mailbox')
  const relayAtEnd = relay.mailbox.stats()
  const heapAfter = heapMiB()
  await bob.stop()
  await carol.stop()
  await relay.stop({ drainMs: 0 })

  // nothing half-written: the relay's LevelDB reopens and its mailbox is consistent (empty: all acked)
  const db = await openDatabase(join(relayDir, 'db'))
  const store = new MailboxStore(db, resolveMailboxLimits({}))
  await store.open()
  const reopened = store.stats().messages
  await db.close()

  return {
    stored: stored.map(s => s.status),
    refused: summarize(refused),
    outboxWhileFull,
    relayWhileFull: { messages: relayWhileFull.messages, refused: relayWhileFull.refused },
    gotWhileFull,
    relayAfterFetch: { messages: relayAfterFetch.messages, delivered: relayAfterFetch.delivered },
    afterFree: afterFree.map(s => s.status),
    distinctGot: new Set(got).size,
    relayAtEnd: { messages: relayAtEnd.messages, deposited: relayAtEnd.deposited, delivered: relayAtEnd.delivered },
    reopened,
    heap: { before: heapBefore, whileFull: heapWhileFull, after: heapAfter }
  }
}

async function inbox () {
  const bobDir = join(full, 'bob')
  const nodeOptions = { listen: ['/ip4/127.0.0.1/tcp/0'], libp2p: loopbackOnly, heartbeatInterval: 0, mdns: false }
  const startBob = async () => {
    const node = await createMoltNode({ dataDir: bobDir, ...nodeOptions })
    // a request whose reply bob does not store: answered from memory
    node.handle('query', (message) => message.p.domain === 'echo' ? { status: 'success', n: message.p.n } : undefined)
    return node
  }
  // what a node counts as held in its inbox (its molt_inbox_messages gauge)
  const inboxGauge = async (node) => (await node.metrics.registry.getSingleMetric('molt_inbox_messages').get()).values[0].value
  let bob = await startBob()
  const bobId = bob.peerId.toString()
  // every `message` event bob's application sees, by message id
  const events = new Map()
  bob.addEventListener('message', (evt) => {
    const { message } = evt.detail
    if (message.p.domain === 'disk-full') events.set(message.id, (events.get(message.id) ?? 0) + 1)
  })
  const alice = await createMoltNode({ dataDir: join(roomy, 'alice'), ...nodeOptions })
  await alice.libp2p.peerStore.merge(bob.peerId, { multiaddrs: bob.getMultiaddrs() })
  // ids bob acknowledged (send() resolved `delivered`, or alice's outbox delivered them later)
  const acknowledged = new Set()
  const dead = []
  alice.addEventListener('outbox', (evt) => { if (evt.detail.status === 'delivered') acknowledged.add(evt.detail.id) })
  alice.addEventListener('dead-letter', (evt) => { dead.push(evt.detail.reason) })
  const mode = (n) => n % 2 === 0 ? 'at-least-once' : 'exactly-once'
  const send = async (n) => {
    const r = await settle(alice.send(bobId, { op: 'query', p: { domain: 'disk-full', n, pad: 'x'.repeat(2000) } }, { delivery: mode(n) }))
    if (r.result?.status === 'delivered') acknowledged.add(r.result.id)
    return r.result !== undefined ? { n, id: r.result.id, status: r.result.status, lastError: r.result.lastError } : { n, ...r }
  }

  const before = []
  for (let n = 0; n < 5; n++) before.push(await send(n))
  const heapBefore = heapMiB()

  const free = fill(full)
  const freeWhenFull = freeBytes(full)
  const whileFull = []
  for (let n = 5; n < 105; n++) whileFull.push(await send(n))
  // what alice kept retries on bob's full disk: each retry is refused too, nothing is given up on
  const queuedWhileFull = whileFull.filter(r => r.status === 'queued').length
  if (queuedWhileFull > 0) {
    await alice.retryOutbox(bobId)
    await until(() => alice.outbox().every(e => e.attempts >= 2), 20_000, 'alice\'s outbox to retry on the full disk')
  }
  const outboxWhileFull = alice.outbox().length
  // bob keeps serving: a request answered without storing anything on bob's side, a ping
  const echo = await settle(alice.request(bobId, { op: 'query', p: { domain: 'echo', n: 7 } }, { timeout: 10_000 }))
  const ping = await settle(alice.ping(bobId, { timeout: 10_000 }))
  const inboxWhileFull = (await bob.inbox({ limit: 10_000 })).filter(e => e.message.p.domain === 'disk-full').length
  const heldWhileFull = await inboxGauge(bob)
  const heapWhileFull = heapMiB()

  free()
  // what alice was told was not delivered: retried from her outbox (queued), or sent again (refused)
  const resent = []
  for (const r of whileFull) if (r.status === undefined) resent.push(await send(r.n))
  // retry now rather than after the backoff (a retry asked for during a failing flush waits for the next one)
  let retried = 0
  await until(async () => {
    if (alice.outbox().length === 0) return true
    if (Date.now() - retried > 500) { retried = Date.now(); await alice.retryOutbox(bobId) }
    return false
  }, 30_000, 'alice\'s outbox to drain into bob\'s inbox')
  const afterFree = []
  for (let n = 105; n < 110; n++) afterFree.push(await send(n))
  const heapAfter = heapMiB()

  // bob's inbox: every message once
  const stored = (await bob.inbox({ limit: 10_000 })).filter(e => e.message.p.domain === 'disk-full')
  const storedIds = stored.map(e => e.message.id)
  const heldAfterFree = await inboxGauge(bob)
  await alice.stop()
  await bob.stop()

  // nothing half-written: bob restarts on the same LevelDB, and it holds every acknowledged message once
  bob = await startBob()
  const restarted = (await bob.inbox({ limit: 10_000 })).filter(e => e.message.p.domain === 'disk-full').map(e => e.message.id)
  await bob.stop()

  return {
    freeWhenFull,
    before: count(before),
    whileFull: count(whileFull.map(r => r.status !== undefined ? r : { name: r.name, code: `${r.code}:${r.message}` })),
    whileFullErrors: [...new Set(whileFull.map(r => r.message ?? r.lastError).filter(Boolean))],
    outboxWhileFull,
    dead,
    echo: echo.result?.p ?? echo,
    ping: ping.result !== undefined ? ping.result.pong.op : ping,
    inboxWhileFull,
    heldWhileFull,
    resent: count(resent),
    afterFree: count(afterFree),
    acknowledged: acknowledged.size,
    storedCount: storedIds.length,
    storedDistinct: new Set(storedIds).size,
    storedNs: new Set(stored.map(e => e.message.p.n)).size,
    acknowledgedMissing: [...acknowledged].filter(id => !storedIds.includes(id)).length,
    storedUnacknowledged: storedIds.filter(id => !acknowledged.has(id)).length,
    eventsPerId: count([...events.values()].map(v => ({ status: String(v) }))),
    heldAfterFree,
    reopened: { count: restarted.length, distinct: new Set(restarted).size, missing: [...acknowledged].filter(id => !restarted.includes(id)).length },
    heap: { before: heapBefore, whileFull: heapWhileFull, after: heapAfter }
  }
}

/** Outcomes counted by status, or by error name and code */
function count (results) {
  const out = {}
  for (const r of results) {
    const key = r.status ?? `${r.name}:${r.code}`
    out[key] = (out[key] ?? 0) + 1
  }
  return out
}

/** Outcomes counted by status and refusal code/reason */
function summarize (results) {
  const out = {}
  for (const r of results) {
    const key = r.status !== undefined
      ? `${r.status}:${r.refusals.map(f => `${f.code}/${f.reason}`).join(',')}`
      : `rejected:${r.name}`
    out[key] = (out[key] ?? 0) + 1
  }
  return out
}

const scenarios = { outbox, mailbox, inbox }
scenarios[scenario]().then((result) => {
  process.stdout.write(JSON.stringify({ ...result, crashes }) + '\n')
  process.exit(0)
}, (err) => {
  process.stdout.write(JSON.stringify({ error: err?.stack ?? String(err), crashes }) + '\n')
  process.exit(1)
})
