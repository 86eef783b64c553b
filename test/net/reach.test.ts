import { describe, it, expect, beforeAll, afterAll, afterEach } from 'vitest'
import { readdir, readFile } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { tempRoot } from './namespace.js'
import { MOLT_CLI, type MoltProcess, type NsName, type NatNetwork, type Spawned } from './nat/net.js'
import { NatSuite } from './nat/suite.js'

/**
 * Cold paths of issue #14, as a user meets them: A has never met B and knows
 * only its PeerId. Each agent is behind its own NAT and uses its own relay;
 * R2 was bootstrapped from R1, so the private DHT spans both:
 *
 *   lanA (A 10.1.0.2, C 10.1.0.3) ── routerA (NAT) ──┐
 *                                   wan: R1 198.18.0.10, R2 198.18.0.11 (--bootstrap R1)
 *   lanB (B 10.2.0.2)             ── routerB (NAT) ──┘
 *
 * A: `molt agent --relay R1`; B: `molt agent --relay R2 --echo`; C: a data
 * dir with no agent, used by the one-off `molt send` (it bootstraps from R1).
 * Same topology and safety rules as nat.test.ts (nat/topology.sh, every
 * process inside a namespace of this run, killed by PID, namespaces deleted).
 * Waits are on events (lines the processes print, exits) with generous
 * bounds, never on elapsed time. The tests run in order and share state.
 */

const R1_LISTEN = '/ip4/198.18.0.10/tcp/4001'
const R2_LISTEN = '/ip4/198.18.0.11/tcp/4001'
/** Every molt process logs its routing-record and resolver decisions to stderr (shown when a test fails) */
const DEBUG_ENV = { DEBUG: ['molt:routing-record', 'molt:resolver', 'molt:delivery', 'molt:relay-client', process.env.NAT_DEBUG].filter(Boolean).join(',') }
/** Bound on waits for something the network must do on its own (reservations, records, outbox retries) */
const SETTLE_MS = 90_000
/** Bound on a process's start (to its listening line): a loaded shared machine takes seconds */
const START_MS = 60_000
/** molt send's exit code for `queued` (src/cli/commands/send.ts SEND_EXIT) */
const EXIT_QUEUED = 75

const root = await tempRoot(`molt-nat-${process.pid}-`)
const suite = new NatSuite(root, { env: DEBUG_ENV, startTimeoutMs: START_MS })
const { net, procs, drivers } = suite
const cDir = join(root.dir, 'c')

const peerOf = (p: MoltProcess): string => p.listening.peerId
const relayAddr = (listen: string, relay: MoltProcess): string => `${listen}/p2p/${peerOf(relay)}`
/** A string found nowhere but in the one message that carries it */
const marker = (): string => `reach-${randomBytes(24).toString('hex')}`

const launch = async (name: string, ns: NsName, args: string[]): Promise<MoltProcess> => suite.launch(name, ns, args)
const restart = async (name: string): Promise<MoltProcess> => suite.restart(name)

/** SIGTERM (a graceful stop, exit 0 expected) or SIGKILL */
async function stop (name: string, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  const p = procs[name]
  suite.expectedUp.delete(name)
  await followers.get(p)?.stop('SIGKILL')
  const exit = await p.proc.stop(signal)
  if (signal === 'SIGTERM') expect(exit.code, `${name} exit after SIGTERM; stderr ${p.proc.stderr.slice(-2000)}`).toBe(0)
  else expect(exit.signal).toBe(signal)
}

/** Resolves once `proc`'s stderr matches `pattern` (from its start), or rejects when it exits first or after `timeoutMs` */
async function stderrMatch (proc: Spawned, pattern: RegExp, what: string, timeoutMs = SETTLE_MS): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    const check = (): boolean => {
      const found = pattern.exec(proc.stderr)
      if (found == null) return false
      finish()
      resolve(found)
      return true
    }
    const onClose = (): void => { finish(); reject(new Error(`${proc.label} exited before ${what}; stderr ${proc.stderr.slice(-3000)}`)) }
    const timer = setTimeout(() => { finish(); reject(new Error(`no ${what} within ${timeoutMs} ms; ${proc.label} stderr ${proc.stderr.slice(-3000)}`)) }, timeoutMs)
    const finish = (): void => {
      clearTimeout(timer)
      proc.child.stderr?.off('data', onData)
      proc.child.off('close', onClose)
    }
    // RunningCli appends to proc.stderr on the same event, registered first
    const onData = (): void => { check() }
    proc.child.stderr?.on('data', onData)
    proc.child.once('close', onClose)
    check()
  })
}

/**
 * `molt inbox --follow --json` on `agent` (through its API), as a user would
 * read it: it prints what is there, then each arrival. One per agent process,
 * started at its first use and kept (a CLI process start per message would
 * cost seconds on a loaded machine); killed with the agent (stop) or at teardown.
 */
const followers = new Map<MoltProcess, Spawned>()
function follower (agent: MoltProcess): Spawned {
  let reader = followers.get(agent)
  if (reader == null || reader.child.exitCode !== null || reader.child.signalCode !== null) {
    reader = net.start(agent.proc.ns, [MOLT_CLI, 'inbox', '--follow', '--json', '--data-dir', agent.dataDir], `inbox of ${agent.proc.label}`)
    followers.set(agent, reader)
  }
  return reader
}

/** The inbox entry of the message whose payload carries `tag`, once `molt inbox --follow` on `agent` printed it */
async function arrival (agent: MoltProcess, tag: string, timeoutMs = SETTLE_MS): Promise<any> {
  return follower(agent).waitForJson(v => v.event === 'message' && v.message?.p?.tag === tag, timeoutMs)
}

/** Every file under `dir` that contains `needle` (bytes), relative paths */
async function filesContaining (dir: string, needle: string): Promise<string[]> {
  const bytes = Buffer.from(needle)
  const found: string[] = []
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue
    const path = join(entry.parentPath, entry.name)
    const content = await readFile(path).catch(() => undefined)
    if (content?.includes(bytes) === true) found.push(path.slice(dir.length + 1))
  }
  return found
}

async function molt (ns: NsName, args: string[], timeoutMs = 60_000): ReturnType<NatNetwork['molt']> {
  return net.molt(ns, args, timeoutMs)
}

const stream = (tag: string): string => JSON.stringify({ action: 'chunk', stream_id: 'reach', seq: 0, tag })

const logs = (): string => suite.logs()

beforeAll(async () => {
  await suite.up()
  const r1 = await launch('R1', 'wan', ['relay', '--listen', R1_LISTEN])
  const r2 = await launch('R2', 'wan', ['relay', '--listen', R2_LISTEN, '--bootstrap', relayAddr(R1_LISTEN, r1)])
  const [, b] = await Promise.all([
    launch('A', 'la', ['agent', '--listen', '/ip4/10.1.0.2/tcp/0', '--api-port', '0', '--no-mdns', '--relay', relayAddr(R1_LISTEN, r1)]),
    launch('B', 'lb', ['agent', '--listen', '/ip4/10.2.0.2/tcp/0', '--api-port', '0', '--no-mdns', '--echo', '--relay', relayAddr(R2_LISTEN, r2)])
  ])
  // B is reachable once its record, naming its circuit through R2, is in the DHT
  await stderrMatch(b.proc, /published routing record seq \d+ to [1-9]\d* DHT servers \(\d+ direct, [1-9]\d* circuit/, 'routing record of B with its circuit address')
}, 150_000)

/** A molt process that died on its own fails the test it died in, with its stderr */
afterEach(() => {
  const died = suite.takeDied()
  if (died.names.length > 0) throw new Error(died.report)
})

afterAll(async () => {
  const left = await suite.down()
  expect(left, 'namespaces of this run left behind').toEqual([])
}, 60_000)

describe('reach an agent behind NAT by its PeerId alone (A and B on different relays)', () => {
  it('1. A, which never met B, queries B by PeerId: respond, relayed through B\'s relay R2', async () => {
    const { A: a, B: b, R2: r2 } = procs
    const peers = await drivers.la!.call('http', { api: a.api, path: '/v1/peers' })
    expect(peers.body.peers.map((p: any) => p.peerId), 'A must not know B yet').not.toContain(peerOf(b))

    const tag = marker()
    const query = await molt('la', ['send', peerOf(b), '--op', 'query', '--payload', JSON.stringify({ domain: 'reach', intent: 'echo', params: { tag } }), '--json', '--data-dir', a.dataDir])
    expect(query.code, `${query.stderr}\n${logs()}`).toBe(0)
    expect(query.json).toMatchObject({ op: 'respond', p: { status: 'success', data: { echo: { params: { tag } } } } })

    // the reply came back over a relayed connection (A's inbox says so) ...
    const inboxA = await molt('la', ['inbox', '--json', '--limit', '1000', '--data-dir', a.dataDir])
    expect(inboxA.code, inboxA.stderr).toBe(0)
    const reply = inboxA.json.messages.find((e: any) => e.message.op === 'respond' && e.message.re === query.json.re)
    expect(reply).toMatchObject({ peer: peerOf(b), route: 'relayed' })
    // ... and the route A takes to B is the circuit through R2, which A had never heard of
    const route = await molt('la', ['send', peerOf(b), '--op', 'stream', '--payload', stream(marker()), '--json', '--data-dir', a.dataDir])
    expect(route.code, route.stderr).toBe(0)
    expect(route.json).toMatchObject({ status: 'delivered', route: 'relayed', relay: peerOf(r2) })
    const after = await drivers.la!.call('http', { api: a.api, path: '/v1/peers' })
    const bAtA = after.body.peers.find((p: any) => p.peerId === peerOf(b))
    expect(bAtA).toMatchObject({ status: 'connected', route: 'relayed' })
    expect(bAtA.addresses.some((x: string) => x.includes(`/p2p/${peerOf(r2)}/p2p-circuit`)), JSON.stringify(bAtA)).toBe(true)
  }, 120_000)

  it('2. the one-off CLI (no agent on its data dir, --relay R1 only) delivers to B\'s PeerId: exit 0', async () => {
    const { B: b, R1: r1 } = procs
    const tag = marker()
    const sent = await molt('la', ['send', peerOf(b), '--op', 'stream', '--payload', stream(tag), '--relay', relayAddr(R1_LISTEN, r1), '--json', '--data-dir', cDir])
    expect(sent.code, `${sent.stdout}\n${sent.stderr}`).toBe(0)
    expect(sent.json).toMatchObject({ status: 'delivered', route: 'relayed', relay: peerOf(procs.R2) })
    const [id, arrived] = await Promise.all([molt('la', ['id', '--json', '--data-dir', cDir]), arrival(b, tag)])
    expect(arrived.peer).toBe(id.json.peerId)
  }, 120_000)

  let storedTags: string[] = []
  it('3. B goes offline after having been online: A\'s agent and the one-off CLI get `stored` (exit 0); neither relay holds the plaintext', async () => {
    const { A: a, R1: r1, R2: r2 } = procs
    await stop('B')
    const fromAgent = marker()
    const fromCli = marker()
    storedTags = [fromAgent, fromCli]
    // A's agent and the one-off CLI (on C's data dir) send at the same time: independent senders
    const [viaAgent, oneOff] = await Promise.all([
      molt('la', ['send', peerOf(procs.B), '--op', 'stream', '--payload', stream(fromAgent), '--json', '--data-dir', a.dataDir]),
      molt('la', ['send', peerOf(procs.B), '--op', 'stream', '--payload', stream(fromCli), '--relay', relayAddr(R1_LISTEN, r1), '--json', '--data-dir', cDir])
    ])
    expect(viaAgent.code, `${viaAgent.stdout}\n${viaAgent.stderr}\n${logs()}`).toBe(0)
    expect(viaAgent.json).toMatchObject({ status: 'stored', route: 'mailbox' })
    expect(viaAgent.json.mailboxes.map((m: any) => m.relay)).toContain(peerOf(r2))

    expect(oneOff.code, `${oneOff.stdout}\n${oneOff.stderr}`).toBe(0)
    expect(oneOff.json).toMatchObject({ status: 'stored' })
    expect(oneOff.json.mailboxes.map((m: any) => m.relay)).toContain(peerOf(r2))

    // sealed: no relay's files hold either payload (the check finds plaintext in a data dir: see test 4)
    for (const tag of storedTags) {
      expect(await filesContaining(r1.dataDir, tag), 'plaintext in R1\'s data dir').toEqual([])
      expect(await filesContaining(r2.dataDir, tag), 'plaintext in R2\'s data dir').toEqual([])
    }
  }, 120_000)

  it('4. B restarts: both stored messages are in its inbox', async () => {
    const b = await restart('B')
    for (const tag of storedTags) {
      const line = await arrival(b, tag)
      expect(line).toMatchObject({ route: 'mailbox' })
    }
    const inbox = await molt('lb', ['inbox', '--json', '--limit', '1000', '--data-dir', b.dataDir])
    expect(inbox.code, inbox.stderr).toBe(0)
    const tags = inbox.json.messages.map((e: any) => e.message.p?.tag)
    for (const tag of storedTags) expect(tags).toContain(tag)
    // the control of test 3: the same search finds a payload where it is kept in the clear
    expect((await filesContaining(b.dataDir, storedTags[0])).length).toBeGreaterThan(0)
  }, 150_000)

  let queuedTags: { agent: string, cli: string } = { agent: '', cli: '' }
  it('5. both relays down: A\'s agent and the one-off CLI queue the message, exit 75, and say where it waits', async () => {
    const { A: a, B: b } = procs
    // B is online again and reachable (its record names the circuit through R2)
    await stderrMatch(b.proc, /published routing record seq \d+ to [1-9]\d* DHT servers \(\d+ direct, [1-9]\d* circuit/, 'B\'s record after its restart')
    // killed, not stopped: a graceful stop would wait out its drain of the A-B relayed connection (5 s),
    // and how a relay goes down is not what this test is about (nat.test.ts checks the graceful stop)
    await Promise.all([stop('R1', 'SIGKILL'), stop('R2', 'SIGKILL')])
    queuedTags = { agent: marker(), cli: marker() }
    const [viaAgent, oneOff] = await Promise.all([
      molt('la', ['send', peerOf(b), '--op', 'stream', '--payload', stream(queuedTags.agent), '--json', '--data-dir', a.dataDir]),
      molt('la', ['send', peerOf(b), '--op', 'stream', '--payload', stream(queuedTags.cli), '--relay', relayAddr(R1_LISTEN, procs.R1), '--data-dir', cDir])
    ])
    expect(viaAgent.code, `${viaAgent.stdout}\n${viaAgent.stderr}`).toBe(EXIT_QUEUED)
    expect(viaAgent.json).toMatchObject({ status: 'queued', outbox: { dataDir: a.dataDir, retriedBy: 'agent' } })

    expect(oneOff.code, `${oneOff.stdout}\n${oneOff.stderr}`).toBe(EXIT_QUEUED)
    expect(oneOff.stdout).toContain(`in the outbox of ${cDir}`)
    expect(oneOff.stderr).toContain(`molt agent --data-dir ${cDir}`)
  }, 120_000)

  it('6. relays back: A\'s queued message reaches B with no user action; C\'s is sent by the next molt agent on its data dir', async () => {
    const { A: a, B: b } = procs
    follower(b)
    // same data dirs (same PeerIds) and addresses: R2's bootstrap address for R1 holds while both start at once
    await Promise.all([restart('R1'), restart('R2')])
    // what the one-off promised: the next `molt agent` on C's data dir sends what waits in its outbox
    // (started beside the wait for A's message, which A's agent retries with no help)
    const [line] = await Promise.all([
      arrival(b, queuedTags.agent),
      launch('C', 'la', ['agent', '--listen', '/ip4/10.1.0.3/tcp/0', '--api-port', '0', '--no-mdns', '--relay', relayAddr(R1_LISTEN, procs.R1)])
    ])
    expect(line.peer).toBe(peerOf(a))
    const [outbox, fromC] = await Promise.all([molt('la', ['outbox', '--json', '--data-dir', a.dataDir]), arrival(b, queuedTags.cli)])
    expect(outbox.json.pending.filter((e: any) => e.peer === peerOf(b))).toEqual([])
    expect(fromC.peer).toBe(procs.C.listening.peerId)
  }, 200_000)
})
