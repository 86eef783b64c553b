/**
 * Store-and-forward benchmarks. (1) Mailbox deposit throughput: sealed 1 KiB
 * messages deposited with a molt relay in another process, each acknowledged
 * only after the relay's fsync'd group commit; beside NATS JetStream
 * file-store async publish (Debian nats-server) in the same run. (2) Drain:
 * the recipient comes online and fetches, opens, verifies and stores them.
 * (3) End to end, offline then online, through the outbox (no relay): the
 * time from the recipient connecting to all queued messages being in its inbox.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { Session } from 'node:inspector/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import { createMoltNode, createMessage, signMessage, type MoltNode } from '../src/index.js'
import { runNatsBaseline, type NatsResult } from './nats.js'
import { MailboxChannel } from '../src/services/mailbox/channel.js'
import { encodeDepositRequest, type EncodedRequest } from '../src/services/mailbox/frames.js'
import { signDeposit } from '../src/services/mailbox/deposit-signature.js'
import { MAILBOX_PROTOCOL } from '../src/services/mailbox/index.js'
import type { PeerId } from '@libp2p/interface'

const here = dirname(fileURLToPath(import.meta.url))
const loopback = { connectionManager: { allow: ['/ip4/127.0.0.1'] } as any }

export interface MailboxBenchResult {
  messages: number
  /** Through the SDK: each message sealed and deposited by the mailbox client (sender CPU included) */
  deposit: { perSecond: number, seconds: number }
  /** The relay alone: pre-sealed, pre-signed deposit frames pipelined on 2 streams, acked after fsync */
  relayCapacity: { perSecond: number, seconds: number }
  nats?: NatsResult
  /** The recipient comes online with `messages` stored for it at the relay: until all are in its inbox */
  drain: { messages: number, perSecond: number, seconds: number, recipientMicrosPerMessage: number, relayMicrosPerMessage: number }
  outboxEndToEnd: { messages: number, seconds: number, perSecond: number }
  sealMicros: number
}

async function waitForInbox (node: MoltNode, count: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (node.inboxCursor() < count) {
    if (Date.now() > deadline) throw new Error(`only ${node.inboxCursor()} of ${count} messages arrived within ${timeoutMs} ms`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

export async function runMailboxBench (options: { messages: number, outboxMessages: number, log: (line: string) => void }): Promise<MailboxBenchResult> {
  const { messages, log } = options
  const dirs: string[] = []
  const dir = async (): Promise<string> => { const d = await mkdtemp(join(tmpdir(), 'molt-bench-mailbox-')); dirs.push(d); return d }
  const relay = spawn(process.execPath, [join(here, 'relay-host.js')], { stdio: ['pipe', 'pipe', 'inherit'] })
  const nodes: MoltNode[] = []
  try {
    const relayLines = createInterface({ input: relay.stdout })[Symbol.asyncIterator]()
    const nextLine = async (): Promise<any> => {
      const { value, done } = await relayLines.next()
      if (done === true) throw new Error('the relay host exited')
      return JSON.parse(value)
    }
    const relayStats = async (): Promise<{ mailbox?: { messages: number }, cpuUserMs: number, cpuSystemMs: number }> => { relay.stdin.write('stats\n'); return nextLine() }
    const relayAddress = (await nextLine()).address as string
    const relayId = peerIdFromString(relayAddress.split('/p2p/')[1])
    // the recipient: only its PeerId matters for sealing; it is offline during the deposits
    const recipientDir = await dir()
    const bob = await createMoltNode({ dataDir: recipientDir, listen: [], relays: [relayAddress], heartbeatInterval: 0, libp2p: loopback })
    const bobId = bob.peerId
    // a relay keeps mailboxes only for agents registered with it: a mailbox session (a fetch) registers bob
    await bob.libp2p.services.mailbox.sync(relayId, { addrs: [multiaddr(relayAddress)] })
    await bob.stop()
    const alice = await createMoltNode({ dataDir: await dir(), listen: ['/ip4/127.0.0.1/tcp/0'], heartbeatInterval: 0, libp2p: loopback })
    nodes.push(alice)
    const signingKey = (alice as any).identity.signingKey
    const payload = { domain: 'bench', data: 'x'.repeat(900) }
    const build = (): any => signMessage(createMessage({ op: 'query', p: payload, from: alice.agent, to: { agent: 'bob', org: 'peer' }, exp: Date.now() + 3_600_000 }), signingKey)
    const target = { peerId: relayId, addrs: [multiaddr(relayAddress)] }
    const mailbox = alice.libp2p.services.mailbox
    // warm up: connection, stream, JIT
    await Promise.all(Array.from({ length: 2000 }, async () => mailbox.deposit(target, bobId, build())))
    const prepared = Array.from({ length: messages }, build)
    log(`  mailbox: depositing ${messages} sealed ~1 KiB messages (durable acks)`)
    const started = performance.now()
    await Promise.all(prepared.map(async message => mailbox.deposit(target, bobId, message)))
    const depositSeconds = (performance.now() - started) / 1000
    log(`  mailbox: relay capacity, ${messages} pre-sealed boxes in signed frames of 1,024 on 2 streams`)
    const relayCapacity = await depositFrames(alice, relayAddress, bobId, prepared.length, mailbox)
    // sealing cost alone, for the record (it is inside the deposit figure)
    const sealStart = performance.now()
    const sealer = (mailbox as any).sealer
    for (let i = 0; i < 5000; i++) sealer.seal(Buffer.alloc(1100), { sender: bobId.publicKey!.raw, recipient: bobId.publicKey!.raw, id: 'x' })
    const sealMicros = (performance.now() - sealStart) * 1000 / 5000

    // everything deposited above waits for bob: the warm-up, the SDK deposits and the relay-capacity frames
    const stored = 2000 + 2 * messages
    const held = await relayStats()
    if (held.mailbox?.messages !== undefined && held.mailbox.messages !== stored) throw new Error(`the relay holds ${held.mailbox.messages} messages, expected ${stored}`)
    log(`  mailbox: recipient comes online and drains ${stored}`)
    // MOLT_BENCH_PROFILE=<dir>: CPU profiles of the relay and of this process over the drain alone
    const profileDir = process.env.MOLT_BENCH_PROFILE
    let profiler: Session | undefined
    if (profileDir !== undefined) {
      relay.stdin.write('profile-start\n')
      await nextLine()
      profiler = new Session()
      profiler.connect()
      await profiler.post('Profiler.enable')
      await profiler.post('Profiler.start')
    }
    const relayBefore = await relayStats()
    const cpuBefore = process.cpuUsage()
    const drainStarted = performance.now()
    const bob2 = await createMoltNode({ dataDir: recipientDir, listen: [], relays: [relayAddress], heartbeatInterval: 0, libp2p: loopback })
    nodes.push(bob2)
    await waitForInbox(bob2, stored, 300_000)
    const drainSeconds = (performance.now() - drainStarted) / 1000
    const recipientCpu = process.cpuUsage(cpuBefore)
    const relayAfter = await relayStats()
    const drainCpu = {
      recipientMicrosPerMessage: (recipientCpu.user + recipientCpu.system) / stored,
      relayMicrosPerMessage: 1000 * (relayAfter.cpuUserMs + relayAfter.cpuSystemMs - relayBefore.cpuUserMs - relayBefore.cpuSystemMs) / stored
    }
    log(`  mailbox: drained ${stored} in ${drainSeconds.toFixed(2)} s; CPU per message: recipient ${drainCpu.recipientMicrosPerMessage.toFixed(1)} µs (this process), relay ${drainCpu.relayMicrosPerMessage.toFixed(1)} µs`)
    if (profiler !== undefined && profileDir !== undefined) {
      const { profile } = await profiler.post('Profiler.stop')
      await writeFile(join(profileDir, 'drain-recipient.cpuprofile'), JSON.stringify(profile))
      profiler.disconnect()
      relay.stdin.write(`profile-stop ${join(profileDir, 'drain-relay.cpuprofile')}\n`)
      await nextLine()
      log(`  mailbox: drain profiles in ${profileDir}`)
    }

    log(`  outbox: ${options.outboxMessages} messages queued for an offline peer, then it connects`)
    const carolDir = await dir()
    const carol = await createMoltNode({ dataDir: carolDir, listen: ['/ip4/127.0.0.1/tcp/0'], heartbeatInterval: 0, libp2p: loopback })
    const carolId = carol.peerId
    await carol.stop()
    await alice.libp2p.peerStore.merge(carolId, { multiaddrs: [multiaddr('/ip4/127.0.0.1/tcp/1')] })
    await Promise.all(Array.from({ length: options.outboxMessages }, async (_, i) =>
      alice.send(carolId, { op: 'query', p: { domain: 'bench', seq: i, data: 'x'.repeat(900) } })))
    if (alice.outbox().length !== options.outboxMessages) throw new Error(`expected ${options.outboxMessages} queued, found ${alice.outbox().length}`)
    const e2eStarted = performance.now()
    const carol2 = await createMoltNode({ dataDir: carolDir, listen: ['/ip4/127.0.0.1/tcp/0'], heartbeatInterval: 0, libp2p: loopback })
    nodes.push(carol2)
    await carol2.libp2p.dial(alice.getMultiaddrs()[0])
    await waitForInbox(carol2, options.outboxMessages, 300_000)
    const e2eSeconds = (performance.now() - e2eStarted) / 1000

    log('  nats: JetStream file-store async publish, same message count, 1 KiB payloads')
    const nats = await runNatsBaseline(messages, 1024)
    if (nats === undefined) log('  nats-server not found: install Debian\'s nats-server for the baseline (apt-get install nats-server)')
    return {
      messages,
      deposit: { perSecond: messages / depositSeconds, seconds: depositSeconds },
      nats,
      relayCapacity,
      drain: { messages: stored, perSecond: stored / drainSeconds, seconds: drainSeconds, ...drainCpu },
      outboxEndToEnd: { messages: options.outboxMessages, seconds: e2eSeconds, perSecond: options.outboxMessages / e2eSeconds },
      sealMicros
    }
  } finally {
    await Promise.allSettled(nodes.map(async n => n.stop()))
    relay.stdin?.end()
    await new Promise(resolve => relay.once('exit', resolve))
    await Promise.all(dirs.map(async d => rm(d, { recursive: true, force: true })))
  }
}

/** Pre-seal `count` boxes into signed 1,024-box frames, then time their deposit over 2 raw mailbox streams */
async function depositFrames (alice: MoltNode, relayAddress: string, bobId: PeerId, count: number, mailbox: any): Promise<{ perSecond: number, seconds: number }> {
  const from = alice.peerId.toString()
  const to = bobId.toString()
  const signingKey = (alice as any).identity.signingKey
  const sealer = mailbox.sealer
  const frames: EncodedRequest[] = []
  for (let done = 0; done < count;) {
    const items = []
    for (let i = 0; i < 1024 && done < count; i++, done++) {
      const message = signMessage(createMessage({ op: 'query', p: { domain: 'bench', data: 'x'.repeat(900) }, from: alice.agent, to: { agent: 'bob', org: 'peer' }, exp: Date.now() + 3_600_000 }), signingKey)
      const box = Buffer.from(sealer.seal(Buffer.from(JSON.stringify(message)), { sender: alice.peerId.publicKey!.raw, recipient: bobId.publicKey!.raw, id: message.id })).toString('base64')
      items.push({ id: message.id, exp: message.exp as number, box })
    }
    // written as the SDK's client writes them (frames.ts)
    frames.push(encodeDepositRequest(from, to, items, signDeposit(signingKey, from, to, items)))
  }
  const connection = await alice.libp2p.dial(multiaddr(relayAddress))
  const channels = await Promise.all([0, 1].map(async () => new MailboxChannel(await connection.newStream(MAILBOX_PROTOCOL), alice.libp2p.logger.forComponent('bench'))))
  const started = performance.now()
  let next = 0
  await Promise.all(channels.flatMap(channel => [0, 1, 2, 3].map(async () => {
    while (next < frames.length) {
      const answer = await channel.request(frames[next++])
      if (answer.t !== 'stored') throw new Error(`deposit refused: ${JSON.stringify(answer)}`)
    }
  })))
  const seconds = (performance.now() - started) / 1000
  for (const channel of channels) channel.close()
  return { perSecond: count / seconds, seconds }
}
