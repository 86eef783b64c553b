import { describe, it, expect, beforeAll, afterAll, afterEach } from 'vitest'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { tempRoot } from './namespace.js'
import { Driver, circuitVia, exited, type MoltProcess, type NsName } from './nat/net.js'
import { NatSuite } from './nat/suite.js'
import { skipWithout } from '../support/tools.js'
import { eventually } from '../support/eventually.js'

/**
 * Agents behind two NATs reach each other only through `molt relay`s:
 *
 *   lanA (A 10.1.0.2, C 10.1.0.3) ── routerA (MASQUERADE, NEW from wan dropped) ──┐
 *                                                              wan 198.18.0.0/24: R1 .10, R2 .11, R3 .12
 *   lanB (B 10.2.0.2, D 10.2.0.3) ── routerB (MASQUERADE, NEW from wan dropped) ──┘
 *
 * Built from network namespaces by nat/topology.sh (root; ip, iptables,
 * setpriv); every process runs inside them (`ip netns exec`), nothing here
 * dials anything from the default namespace, mDNS is off everywhere. The
 * agents' local APIs are reached through nat/driver.mjs, running in each LAN.
 * The tests run in order and share the topology: each one starts from the
 * state the previous one left.
 */

const R1_LISTEN = '/ip4/198.18.0.10/tcp/4001'
const R2_LISTEN = '/ip4/198.18.0.11/tcp/4001'
const R3_LISTEN = '/ip4/198.18.0.12/tcp/4001'
/** The relay's data path limit a stock js-libp2p relay has (molt relay raises it) */
const STOCK_DATA_LIMIT = 128 * 1024
const BIG = 600 * 1024
/** Bounds the scenarios assert */
const DURATION_LIMIT_MS = 5000
const CONVERSATION_MS = 12_000
const SEQUENCE_N = 200
/** molt processes log their relay decisions to stderr (shown when a test fails); NAT_DEBUG adds namespaces */
const DEBUG_ENV = { DEBUG: ['molt:relay', 'molt:relay-client', process.env.NAT_DEBUG].filter(Boolean).join(',') }

const SKIP = skipWithout('test/net/nat.test.ts', 'root', 'ip', 'iptables', 'setpriv')
const suiteStarted = performance.now()
// data dirs of every process; the pid in the name lets a later run remove it if this one is killed
const root = await tempRoot(`molt-nat-${process.pid}-`)
if (SKIP) await root.remove()
/** Bound on a process's start (to its listening line), to report a hang: a loaded shared machine takes seconds, more when several start at once */
const START_MS = 60_000
const suite = new NatSuite(root, { env: DEBUG_ENV, startTimeoutMs: START_MS })
const { net, drivers, expectedUp } = suite
const relays: Record<string, MoltProcess> = {}
const agents: Record<string, MoltProcess> = {}
const summaries: unknown[] = []

function summary (scenario: string, values: Record<string, unknown>): void {
  const line = { scenario, ...values }
  summaries.push(line)
  console.log(JSON.stringify(line))
}

const peerOf = (p: MoltProcess): string => p.listening.peerId
const relayAddr = (listen: string, relay: MoltProcess): string => `${listen}/p2p/${peerOf(relay)}`
const driverOf = (agent: MoltProcess): Driver => drivers[agent.proc.ns]!

async function launch (name: string, ns: NsName, args: string[]): Promise<MoltProcess> {
  const p = await suite.launch(name, ns, args)
  if (args[0] === 'relay') relays[name] = p
  else agents[name] = p
  return p
}

async function startRelay (name: string, listen: string, extra: string[] = []): Promise<MoltProcess> {
  return launch(name, 'wan', ['relay', '--listen', listen, '--stats-interval', '500', ...extra])
}

async function startAgent (name: string, ns: NsName, ip: string, relayAddrs: string[]): Promise<MoltProcess> {
  const args = ['agent', '--listen', `/ip4/${ip}/tcp/0`, '--api-port', '0', '--no-mdns', '--echo', ...relayAddrs.flatMap(r => ['--relay', r])]
  const agent = await launch(name, ns, args)
  if (agent.listening.mdns !== false) throw new Error(`${name} says mDNS is on: ${JSON.stringify(agent.listening)}`)
  return agent
}

/** SIGTERM (graceful) or SIGKILL, and wait for the exit */
async function stop (p: MoltProcess, signal: NodeJS.Signals): Promise<{ code: number | null, signal: NodeJS.Signals | null, ms: number }> {
  expectedUp.delete(p.proc.label)
  const started = performance.now()
  const exit = await Promise.race([
    p.proc.stop(signal),
    sleep(15_000).then(() => { throw new Error(`${p.proc.label} did not exit within 15 s of ${signal}`) })
  ])
  return { ...exit, ms: Math.round(performance.now() - started) }
}

/** Poll the agent's addresses until a circuit address through `relay` is (not) there */
async function waitCircuit (agent: MoltProcess, relay: MoltProcess, present: boolean, timeoutMs = 20_000): Promise<{ ms: number, addresses: string[] }> {
  return driverOf(agent).call('waitAddresses', { api: agent.api, relay: peerOf(relay), present, timeoutMs })
}

/** The agent's current circuit address through `relay` */
async function circuitOf (agent: MoltProcess, relay: MoltProcess): Promise<string> {
  const { addresses } = await waitCircuit(agent, relay, true)
  return circuitVia(addresses, peerOf(relay))[0]
}

async function api (agent: MoltProcess, method: string, path: string, body?: unknown, timeoutMs = 30_000): Promise<{ status: number, body: any, ms: number, error?: string }> {
  return driverOf(agent).call('http', { api: agent.api, method, path, body, timeoutMs })
}

/** Every message in the agent's inbox, via `molt inbox --json` in its namespace (paged) */
async function inboxOf (agent: MoltProcess): Promise<any[]> {
  const all: any[] = []
  let after = 0
  for (;;) {
    const run = await net.molt(agent.proc.ns, ['inbox', '--json', '--limit', '1000', '--after', String(after), '--data-dir', agent.dataDir])
    if (run.code !== 0) throw new Error(`molt inbox exited ${run.code}: ${run.stderr}`)
    all.push(...run.json.messages)
    if (run.json.messages.length < 1000) return all
    after = run.json.next
  }
}

/** Stats lines the relay printed since `fromLine` */
/** Wait for the relay's next stats line (printed every stats interval): its figures include everything before now */
async function nextStats (relay: MoltProcess): Promise<void> {
  const from = relay.proc.lines.length
  await eventually(() => relayStats(relay, from).length > 0, 20_000, `a stats line from ${relay.proc.label}`)
}

function relayStats (relay: MoltProcess, fromLine = 0): any[] {
  return relay.proc.lines.slice(fromLine).flatMap((line) => {
    try {
      const value = JSON.parse(line)
      return value.event === 'stats' ? [value] : []
    } catch {
      return []
    }
  })
}

function logs (): string {
  const all = { ...relays, ...agents }
  if (process.env.NAT_LOGS != null) {
    for (const [name, p] of Object.entries(all)) writeFileSync(join(process.env.NAT_LOGS, `${name}.log`), p.proc.stderr)
  }
  return Object.entries(all).map(([name, p]) => `--- ${name} stderr (tail)\n${p.proc.stderr.slice(-3000)}`).join('\n')
}

beforeAll(async () => {
  const topologyMs = await suite.up()
  const [r1] = await Promise.all([startRelay('R1', R1_LISTEN), startRelay('R2', R2_LISTEN)])
  const [a, b] = await Promise.all([
    startAgent('A', 'la', '10.1.0.2', [relayAddr(R1_LISTEN, r1)]),
    startAgent('B', 'lb', '10.2.0.2', [relayAddr(R1_LISTEN, r1)])
  ])
  const [ra, rb] = await Promise.all([waitCircuit(a, r1, true), waitCircuit(b, r1, true)])
  summary('setup', {
    namespaces: net.existing().length,
    topologyMs,
    relayStartMs: relays.R1.startMs,
    agentStartMs: Math.max(a.startMs, b.startMs),
    reservedMs: Math.max(ra.ms, rb.ms)
  })
}, 90_000)

/**
 * A molt process that died on its own fails the test it died in (with its
 * stderr); it is started again, same data dir and args, so the next scenario
 * still tests what it is about.
 */
afterEach(async () => {
  const died = suite.takeDied()
  if (died.names.length === 0) return
  for (const name of died.names) {
    const p = await suite.restart(name)
    if (p.args[0] === 'relay') relays[name] = p
    else agents[name] = p
    summary('restarted-after-crash', { process: name })
  }
  throw new Error(died.report)
}, 60_000)

afterAll(async () => {
  const left = await suite.down()
  summary('done', { totalMs: Math.round(performance.now() - suiteStarted), namespacesLeft: left.length })
  expect(left, 'namespaces of this run left behind').toEqual([])
}, 60_000)

describe.skipIf(SKIP)('agents behind two NATs, through molt relays (ip netns topology)', () => {
  it('1. A cannot reach B directly: TCP and `molt send` to B\'s LAN address fail, while A reaches the wan relay', async () => {
    const { A: a, B: b } = agents
    const lanOf = (agent: MoltProcess, ip: string): string => agent.listening.addresses.find(x => x.startsWith(`/ip4/${ip}/tcp/`))!
    const bLan = lanOf(b, '10.2.0.2')
    const aLan = lanOf(a, '10.1.0.2')
    expect(bLan, JSON.stringify(b.listening.addresses)).toBeDefined()
    const port = (ma: string): number => Number(ma.split('/')[4])
    const payload = JSON.stringify({ domain: 'nat', intent: 'echo', params: { direct: true } })
    const [aToB, bToA, control, send] = await Promise.all([
      drivers.la!.call('tcp', { host: '10.2.0.2', port: port(bLan), timeoutMs: 3000 }),
      drivers.lb!.call('tcp', { host: '10.1.0.2', port: port(aLan), timeoutMs: 3000 }),
      drivers.la!.call('tcp', { host: '198.18.0.10', port: 4001, timeoutMs: 3000 }),
      net.molt('la', ['send', bLan, '--op', 'query', '--payload', payload, '--timeout', '15000', '--json', '--data-dir', a.dataDir], 40_000)
    ])
    summary('1-no-direct-path', {
      tcpAtoB: aToB, tcpBtoA: bToA, tcpAtoR1: control,
      moltSend: { code: send.code, ms: send.ms, error: send.stderr.trim().split('\n').at(-1) }
    })
    expect(control.connected, 'A must reach the relay on the wan (the topology works)').toBe(true)
    expect(aToB.connected, 'A must not reach B\'s LAN address').toBe(false)
    expect(bToA.connected, 'B must not reach A\'s LAN address').toBe(false)
    expect(send.code, `molt send to B's LAN address must fail: ${send.stdout}`).not.toBe(0)
    expect(send.json?.op).not.toBe('respond')
  }, 60_000)

  it('2. A → B and B → A request/response through R1, reported as relayed via R1', async () => {
    const { A: a, B: b } = agents
    const r1 = relays.R1
    const [aCircuit, bCircuit] = await Promise.all([circuitOf(a, r1), circuitOf(b, r1)])
    expect(bCircuit).toBe(`${relayAddr(R1_LISTEN, r1)}/p2p-circuit/p2p/${peerOf(b)}`)
    // the CLI, as a user would: molt id shows the circuit address, molt send uses it
    const [idB, idA] = await Promise.all([
      net.molt('lb', ['id', '--json', '--data-dir', b.dataDir]),
      net.molt('la', ['id', '--json', '--data-dir', a.dataDir])
    ])
    expect(idB.json.addresses).toContain(bCircuit)
    expect(idA.json.addresses).toContain(aCircuit)
    const ask = async (from: MoltProcess, to: string, tag: string): Promise<{ reply: any, ms: number, code: number | null, stderr: string }> => {
      const payload = { domain: 'nat', intent: 'echo', params: { tag } }
      const run = await net.molt(from.proc.ns, ['send', to, '--op', 'query', '--payload', JSON.stringify(payload), '--json', '--data-dir', from.dataDir])
      return { reply: run.json, ms: run.ms, code: run.code, stderr: run.stderr }
    }
    const aToB = await ask(a, bCircuit, 'a->b')
    expect(aToB.code, aToB.stderr).toBe(0)
    expect(aToB.reply).toMatchObject({ op: 'respond', p: { status: 'success', data: { echo: { domain: 'nat', intent: 'echo', params: { tag: 'a->b' } } } } })
    const bToA = await ask(b, aCircuit, 'b->a')
    expect(bToA.code, bToA.stderr).toBe(0)
    expect(bToA.reply).toMatchObject({ op: 'respond', p: { data: { echo: { params: { tag: 'b->a' } } } } })

    // delivery results name the route and the relay
    const [sendAB, sendBA] = await Promise.all([
      api(a, 'POST', '/v1/messages', { to: peerOf(b), message: { op: 'query', p: { domain: 'nat', intent: 'route' } } }),
      api(b, 'POST', '/v1/messages', { to: peerOf(a), message: { op: 'query', p: { domain: 'nat', intent: 'route' } } })
    ])
    expect(sendAB.body).toMatchObject({ delivered: true, peer: peerOf(b), route: 'relayed', relay: peerOf(r1) })
    expect(sendBA.body).toMatchObject({ delivered: true, peer: peerOf(a), route: 'relayed', relay: peerOf(r1) })
    // and so do the receivers' inbox entries, and the peer lists
    const [inboxB, inboxA, peersA] = await Promise.all([inboxOf(b), inboxOf(a), api(a, 'GET', '/v1/peers')])
    const queryAtB = inboxB.find(e => e.message.p?.params?.tag === 'a->b')
    const replyAtA = inboxA.find(e => e.message.re === aToB.reply.re && e.message.op === 'respond')
    expect(queryAtB).toMatchObject({ peer: peerOf(a), route: 'relayed' })
    expect(replyAtA).toMatchObject({ peer: peerOf(b), route: 'relayed' })
    const bAtA = peersA.body.peers.find((p: any) => p.peerId === peerOf(b))
    expect(bAtA).toMatchObject({ status: 'connected', route: 'relayed' })
    summary('2-relayed-request', {
      aToBMs: aToB.ms, bToAMs: bToA.ms, viaCli: true,
      sendAB: { route: sendAB.body.route, relay: sendAB.body.relay === peerOf(r1) ? 'R1' : sendAB.body.relay, ms: sendAB.ms },
      sendBA: { route: sendBA.body.route, relay: sendBA.body.relay === peerOf(r1) ? 'R1' : sendBA.body.relay, ms: sendBA.ms }
    })
  }, 60_000)

  it('3a. a transfer far above the stock 128 KiB relay limit passes through R1 (600 KiB each way)', async () => {
    const { A: a, B: b } = agents
    const blob = 'x'.repeat(BIG)
    const statsFrom = relays.R1.proc.lines.length
    const big = async (from: MoltProcess, to: MoltProcess): Promise<{ ok: boolean, ms: number, status: number, echoed: number }> => {
      const res = await api(from, 'POST', '/v1/requests', { to: peerOf(to), message: { op: 'query', p: { domain: 'nat', intent: 'bulk', params: { blob } } }, timeoutMs: 30_000 }, 40_000)
      const echoed = res.body?.reply?.p?.data?.echo?.params?.blob?.length ?? 0
      return { ok: res.status === 200 && echoed === BIG, ms: res.ms, status: res.status, echoed }
    }
    const aToB = await big(a, b)
    const bToA = await big(b, a)
    const route = await api(a, 'POST', '/v1/messages', { to: peerOf(b), message: { op: 'query', p: { domain: 'nat', intent: 'route' } } })
    await nextStats(relays.R1)
    const relayed = Math.max(0, ...relayStats(relays.R1, statsFrom).map(s => s.relayedBytes))
    summary('3a-large-transfer', { payloadBytes: BIG, aToB, bToA, route: route.body.route, relayedBytesAtR1: relayed })
    expect(aToB.ok, JSON.stringify(aToB)).toBe(true)
    expect(bToA.ok, JSON.stringify(bToA)).toBe(true)
    expect(route.body).toMatchObject({ route: 'relayed', relay: peerOf(relays.R1) })
    // 4 × 600 KiB crossed R1 (request and echo, both ways)
    expect(relayed).toBeGreaterThan(4 * BIG)
    expect(relayed).toBeGreaterThan(STOCK_DATA_LIMIT)
  }, 60_000)

  it(`3b. a ${CONVERSATION_MS / 1000} s conversation (a query every 500 ms) outlives R1's ${DURATION_LIMIT_MS} ms connection duration limit`, async () => {
    const { A: a, B: b } = agents
    // restart R1 (graceful) with a short relayed-connection lifetime
    const stopped = await stop(relays.R1, 'SIGTERM')
    expect(stopped.code, `R1 exit after SIGTERM; stderr ${relays.R1.proc.stderr.slice(-2000)}`).toBe(0)
    await Promise.all([waitCircuit(a, relays.R1, false), waitCircuit(b, relays.R1, false)])
    const r1 = await startRelay('R1', R1_LISTEN, ['--connection-duration-limit', String(DURATION_LIMIT_MS)])
    expect(r1.listening.limits).toMatchObject({ connectionDurationLimitMs: DURATION_LIMIT_MS })
    const [ra, rb] = await Promise.all([waitCircuit(a, r1, true), waitCircuit(b, r1, true)])
    const statsFrom = r1.proc.lines.length
    const run = await driverOf(a).call('converse', {
      api: a.api, to: peerOf(b), intervalMs: 500, durationMs: CONVERSATION_MS, timeoutMs: 10_000, tag: 'conversation'
    })
    await nextStats(r1)
    const stats = relayStats(r1, statsFrom).at(-1)
    const failed = run.results.filter((r: any) => !r.ok)
    const latencies = run.results.map((r: any) => r.ms).sort((x: number, y: number) => x - y)
    summary('3b-duration-limit', {
      durationLimitMs: DURATION_LIMIT_MS,
      reReservedMs: Math.max(ra.ms, rb.ms),
      queries: run.count,
      ok: run.count - failed.length,
      failed: failed.map((r: any) => ({ i: r.i, at: r.at, ms: r.ms, status: r.status, error: String(r.error).slice(0, 200) })),
      p50Ms: latencies[Math.floor(latencies.length / 2)],
      maxMs: latencies.at(-1),
      slowest: [...run.results].sort((x: any, y: any) => y.ms - x.ms).slice(0, 3).map((r: any) => ({ i: r.i, at: r.at, ms: r.ms })),
      relayedConnectionsOpened: stats?.relayedConnectionsTotal
    })
    // the relay did cut the relayed connection: it was re-opened during the conversation
    expect(stats?.relayedConnectionsTotal, JSON.stringify(stats)).toBeGreaterThanOrEqual(Math.floor(CONVERSATION_MS / DURATION_LIMIT_MS))
    expect(failed, `queries without a reply within 10 s (E_TIMEOUT: a reply that took too long, e.g. a re-dial stalled; "session … closed": the request died with the limited connection)\n${logs()}`).toEqual([])
  }, 90_000)

  it('3c. requests in flight when R1 cuts the limited connection are not lost (a query every 10 ms across a cut)', async () => {
    // at 500 ms pacing a request is rarely in flight at the cut; at 10 ms one nearly always is
    const { A: a, B: b } = agents
    const statsFrom = relays.R1.proc.lines.length
    const openedBefore = relayStats(relays.R1).at(-1)?.relayedConnectionsTotal ?? 0
    const run = await driverOf(a).call('converse', {
      api: a.api, to: peerOf(b), intervalMs: 10, durationMs: DURATION_LIMIT_MS + 1000, timeoutMs: 10_000, tag: 'burst'
    })
    await nextStats(relays.R1)
    const stats = relayStats(relays.R1, statsFrom).at(-1)
    const failed = run.results.filter((r: any) => !r.ok)
    summary('3c-in-flight-at-cut', {
      queries: run.count,
      failed: failed.length,
      errors: [...new Set(failed.map((r: any) => `${r.status} ${String(r.error).slice(0, 160)}`))],
      relayedConnectionsOpened: stats?.relayedConnectionsTotal
    })
    expect(stats?.relayedConnectionsTotal, 'the relay cut (and A re-opened) the relayed connection during the burst').toBeGreaterThan(openedBefore)
    expect(failed.map((r: any) => ({ i: r.i, at: r.at, status: r.status, error: String(r.error).slice(0, 200) })), 'requests lost when the relay closed the limited connection under them').toEqual([])
  }, 60_000)

  it(`4. R1 SIGKILLed and restarted on the same data dir and port: both agents re-reserve, traffic resumes through it (time to first reply printed)`, async () => {
    const { A: a, B: b } = agents
    const old = relays.R1
    const bCircuit = await circuitOf(b, old)
    const killed = await stop(old, 'SIGKILL')
    expect(killed.signal).toBe('SIGKILL')
    const [goneA, goneB] = await Promise.all([waitCircuit(a, old, false), waitCircuit(b, old, false)])
    // same data dir (same PeerId) and port, the default limits again
    const restartedAt = performance.now()
    const r1 = await startRelay('R1', R1_LISTEN)
    expect(peerOf(r1)).toBe(peerOf(old))
    const listeningMs = Math.round(performance.now() - restartedAt)
    // from the restart: retry A → B through R1 until a reply comes back
    const firstRequest = (async () => {
      let attempts = 0
      const errors: string[] = []
      for (;;) {
        attempts++
        const res = await api(a, 'POST', '/v1/requests', { to: bCircuit, message: { op: 'query', p: { domain: 'nat', intent: 'echo', params: { after: 'restart' } } }, timeoutMs: 5000 }, 10_000)
        if (res.status === 200 && res.body.reply?.op === 'respond') return { ms: Math.round(performance.now() - restartedAt), attempts, errors: errors.slice(-3) }
        errors.push(`${res.status} ${res.error ?? res.body?.error?.message ?? ''}`.slice(0, 200))
        if (exited(a)) throw new Error(`agent A exited (${String(a.proc.child.exitCode ?? a.proc.child.signalCode)}) while retrying requests through the restarted R1; A stderr tail:\n${a.proc.stderr.slice(-2500)}`)
        if (performance.now() - restartedAt > 30_000) throw new Error(`no reply through the restarted R1 within 30 s; last errors ${JSON.stringify(errors.slice(-5))}\n${logs()}`)
        await sleep(100)
      }
    })()
    const [ra, rb, first] = await Promise.all([waitCircuit(a, r1, true, 30_000), waitCircuit(b, r1, true, 30_000), firstRequest])
    const reservedA = Math.round(ra.ms + listeningMs)
    const reservedB = Math.round(rb.ms + listeningMs)
    const back = await api(b, 'POST', '/v1/requests', { to: peerOf(a), message: { op: 'query', p: { domain: 'nat', intent: 'echo', params: { back: true } } }, timeoutMs: 10_000 })
    const route = await api(a, 'POST', '/v1/messages', { to: peerOf(b), message: { op: 'query', p: { domain: 'nat', intent: 'route' } } })
    summary('4-relay-restart', {
      killToCircuitGoneMs: Math.max(goneA.ms, goneB.ms),
      restartToListeningMs: listeningMs,
      restartToReservedMs: { A: reservedA, B: reservedB },
      restartToFirstReplyMs: first.ms,
      attempts: first.attempts,
      errorsBeforeFirstReply: first.errors,
      bToA: back.status,
      route: route.body.route
    })
    console.log(`relay restart → first successful request: ${first.ms} ms (A re-reserved after ${reservedA} ms, B after ${reservedB} ms)`)
    expect(back.status, JSON.stringify(back.body)).toBe(200)
    expect(route.body).toMatchObject({ route: 'relayed', relay: peerOf(r1) })
  }, 90_000)

  it(`5. B reserved on R1 and R2; A sends ${SEQUENCE_N} numbered messages at-least-once, R1 SIGKILLed midway: nothing acknowledged is lost, traffic moves to R2`, async () => {
    const { A: a } = agents
    const r1 = relays.R1
    const r2 = relays.R2
    // B again, now with two relays
    const stoppedB = await stop(agents.B, 'SIGTERM')
    expect(stoppedB.code).toBe(0)
    const b = await startAgent('B', 'lb', '10.2.0.2', [relayAddr(R1_LISTEN, r1), relayAddr(R2_LISTEN, r2)])
    const [viaR1] = await Promise.all([waitCircuit(b, r1, true), waitCircuit(b, r2, true)])
    const bR1 = circuitVia(viaR1.addresses, peerOf(r1))[0]
    const tag = `seq-${Date.now()}`
    let killedAt: number | undefined
    let killedT = Infinity
    let ackedAtKill = 0
    let kill: Promise<unknown> | undefined
    const run = await driverOf(a).call('sequence', {
      api: a.api, first: bR1, to: peerOf(b), n: SEQUENCE_N, concurrency: 4, paceMs: 20, tag, sendTimeoutMs: 15_000, maxMs: 90_000
    }, (event) => {
      if (event.event === 'progress' && event.acked >= SEQUENCE_N / 2 && kill == null) {
        killedAt = event.at
        ackedAtKill = event.acked
        // the moment R1 is gone (epoch ms, the driver's clock too)
        kill = stop(r1, 'SIGKILL').then(() => { killedT = Date.now() })
      }
    })
    await kill
    const inbox = (await inboxOf(b)).filter(e => e.message.op === 'stream' && e.message.p?.stream_id === tag)
    const received = new Map<string, any>(inbox.map(e => [e.message.id, e]))
    const acked = (run.acked as any[]).filter(x => x != null)
    const lost = acked.filter(x => !received.has(x.id))
    const copies = new Map<number, number>()
    for (const e of inbox) copies.set(e.message.p.seq, (copies.get(e.message.p.seq) ?? 0) + 1)
    const missingSeqs = Array.from({ length: SEQUENCE_N }, (_, i) => i).filter(i => !copies.has(i))
    const duplicates = [...copies.values()].filter(n => n > 1).length
    // sends begun once R1 was dead must all have gone through R2
    const afterKill = acked.filter(x => x.t > killedT)
    const viaR2After = afterKill.filter(x => x.route === 'relayed' && x.relay === peerOf(r2))
    const firstR2Done = Math.min(...acked.filter(x => x.relay === peerOf(r2)).map(x => x.t + x.ms))
    const relaysUsed: Record<string, number> = {}
    for (const x of acked) {
      const name = x.relay === peerOf(r1) ? 'R1' : x.relay === peerOf(r2) ? 'R2' : `${String(x.route)}:${String(x.relay)}`
      relaysUsed[name] = (relaysUsed[name] ?? 0) + 1
    }
    const slowest = [...acked].sort((x, y) => y.ms - x.ms).slice(0, 3).map(x => ({ seq: x.seq, at: x.at, ms: x.ms, relay: x.relay === peerOf(r2) ? 'R2' : 'R1' }))
    summary('5-failover', {
      n: SEQUENCE_N,
      acked: acked.length,
      elapsedMs: run.elapsedMs,
      killedAtMs: killedAt,
      ackedAtKill,
      failedAttempts: run.failures.length,
      failureKinds: [...new Set(run.failures.map((f: any) => `${f.status} ${String(f.error).slice(0, 90)}`))].slice(0, 4),
      killToFirstAckViaR2Ms: Number.isFinite(firstR2Done) ? firstR2Done - killedT : null,
      slowestAcks: slowest,
      receivedAtB: inbox.length,
      lost: lost.length,
      missingSeqs: missingSeqs.length,
      duplicates,
      relaysUsed
    })
    expect(kill, 'R1 was killed during the run').toBeDefined()
    expect(ackedAtKill).toBeLessThan(SEQUENCE_N)
    expect(acked.length).toBe(SEQUENCE_N)
    expect(lost, 'acknowledged but not in B\'s inbox').toEqual([])
    expect(missingSeqs).toEqual([])
    expect(afterKill.length, 'messages sent after R1 died').toBeGreaterThan(0)
    expect(viaR2After.length, JSON.stringify(afterKill.filter(x => !viaR2After.includes(x)).slice(0, 5))).toBe(afterKill.length)
  }, 120_000)

  it('6. a relay with --max-reservations 1: the first agent reserves, the second is refused (and the relay says why)', async () => {
    const r3 = await startRelay('R3', R3_LISTEN, ['--max-reservations', '1'])
    expect(r3.listening.limits).toMatchObject({ maxReservations: 1 })
    const r3Addr = relayAddr(R3_LISTEN, r3)
    const c = await startAgent('C', 'la', '10.1.0.3', [r3Addr])
    const reservedC = await waitCircuit(c, r3, true)
    const startedD = performance.now()
    const d = await startAgent('D', 'lb', '10.2.0.3', [r3Addr])
    expect(circuitVia(d.listening.addresses, peerOf(r3))).toEqual([])
    // the relay refuses D: its stats count the refusal by reason, its log names D
    const refusedLine = await r3.proc.waitForJson((v) => v.event === 'stats' && v.reservationsRefused?.['global-limit'] >= 1, 20_000)
    const refusedMs = Math.round(performance.now() - startedD)
    // D's relay client logs the refusal (with the relay's reason): from then on D has no reservation to show
    await eventually(() => d.proc.stderr.includes('no reservation on relay'), 20_000, 'D\'s log of the refused reservation')
    const [idC, idD] = await Promise.all([
      net.molt('la', ['id', '--json', '--data-dir', c.dataDir]),
      net.molt('lb', ['id', '--json', '--data-dir', d.dataDir])
    ])
    const relayLog = r3.proc.stderr.split('\n').find(line => line.includes('refused reservation') && line.includes(peerOf(d)))
    // the relay client's log line, and the transport error under it (the reason the relay gave)
    const dLines = d.proc.stderr.split('\n')
    const at = dLines.findIndex(line => line.includes('no reservation on relay') && line.includes(peerOf(r3)))
    const agentLog = at < 0 ? undefined : [dLines[at], ...dLines.slice(at + 1, at + 6).filter(line => line.includes('p2p-circuit:'))].join(' | ')
    summary('6-reservation-limit', {
      reservedCMs: reservedC.ms,
      refusedDMs: refusedMs,
      relayStats: { reservations: refusedLine.reservations, reservationsRefused: refusedLine.reservationsRefused },
      relayLog: relayLog?.replace(/^.*molt:relay /, '').trim(),
      agentLog: agentLog?.replace(/^.*molt:relay-client /, '').trim(),
      circuitC: circuitVia(idC.json.addresses, peerOf(r3)).length,
      circuitD: circuitVia(idD.json.addresses, peerOf(r3)).length
    })
    expect(idC.json.running).toBe(true)
    expect(circuitVia(idC.json.addresses, peerOf(r3))).toHaveLength(1)
    expect(idD.json.running).toBe(true)
    expect(circuitVia(idD.json.addresses, peerOf(r3)), JSON.stringify(idD.json.addresses)).toEqual([])
    expect(refusedLine.reservations).toBe(1)
    expect(relayLog, `R3 log:\n${r3.proc.stderr.slice(-2000)}`).toMatch(/global-limit/)
    expect(agentLog, `D log:\n${d.proc.stderr.slice(-2000)}`).toBeDefined()
  }, 60_000)
})
