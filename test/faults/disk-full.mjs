/**
 * Disk-full scenarios of test/faults/disk-full.test.ts. Run only by that test,
 * inside `unshare -m -n` (a private mount and network namespace): `full` is a
 * small tmpfs mounted in that namespace only, `roomy` a larger one; both
 * disappear with the namespace. Real nodes over TCP on 127.0.0.1 (loopback
 * of the namespace), mDNS off. Prints one JSON line of findings at the end.
 *
 *   disk-full.mjs outbox  <full> <roomy>   an agent whose data dir fills up
 *   disk-full.mjs mailbox <full> <roomy>   a relay whose mailbox store fills up
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

const scenarios = { outbox, mailbox }
scenarios[scenario]().then((result) => {
  process.stdout.write(JSON.stringify({ ...result, crashes }) + '\n')
  process.exit(0)
}, (err) => {
  process.stdout.write(JSON.stringify({ error: err?.stack ?? String(err), crashes }) + '\n')
  process.exit(1)
})
