/**
 * `npm run soak`: agents and two relays, each its own process, exchanging
 * exactly-once queries for a while under churn — agents killed with SIGKILL
 * and restarted, relays killed and restarted — and random packet loss on the
 * relays' ports (iptables, inside a private network namespace: the run
 * re-executes itself under `unshare -n`, so it needs root when --loss > 0).
 * Reports what send() promised against what the recipients' inboxes hold
 * (lost, duplicated), delivery latency over time, and heap growth per process.
 *
 *   npm run soak -- [--duration 2m] [--agents 4] [--rate 20] [--loss 0.01] [--mode exactly-once] [--no-churn] [--json]
 *                   [--replay-cache <ids>] [--inbox-max <messages>]
 *
 * --replay-cache and --inbox-max lower the agents' two bounded structures
 * (defaults 100,000 each) so that a run of tens of minutes reaches their caps
 * and shows the heap levelling off instead of still filling them.
 *
 * MOLT_SOAK_HEAP_SNAPSHOTS=<dir> [MOLT_SOAK_HEAP_SNAPSHOT_AT=3m,13m]: each process
 * writes heap snapshots there (bench/soak/heap-snapshots.ts).
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { setTimeout as sleep } from 'node:timers/promises'
import { openDatabase } from '../../src/storage/index.js'
import { Inbox } from '../../src/inbox/index.js'
import { Outbox } from '../../src/delivery/outbox.js'
import { summarize } from '../stats.js'
import { freePort } from '../ports.js'

const here = dirname(fileURLToPath(import.meta.url))
const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '2m' },
    agents: { type: 'string', default: '4' },
    rate: { type: 'string', default: '20' },
    loss: { type: 'string', default: '0.01' },
    mode: { type: 'string', default: 'exactly-once' },
    'no-churn': { type: 'boolean', default: false },
    'replay-cache': { type: 'string' },
    'inbox-max': { type: 'string' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false }
  }
})
if (values.help === true) {
  process.stdout.write('usage: npm run soak -- [--duration 2m|30s|1h] [--agents 4] [--rate <msg/s per agent>] [--loss 0..1] [--mode exactly-once|at-least-once] [--no-churn] [--json] [--replay-cache <ids>] [--inbox-max <messages>]\n')
  process.exit(0)
}
const durationMs = parseDuration(values.duration as string)
const agentCount = Math.max(2, Number(values.agents))
const rate = Number(values.rate)
const loss = Number(values.loss)
const log = (line: string): void => { process.stderr.write(line + '\n') }
// read by bench/soak/agent.ts (children inherit the environment)
if (values['replay-cache'] != null) process.env.MOLT_SOAK_REPLAY_CACHE = String(Number(values['replay-cache']))
if (values['inbox-max'] != null) process.env.MOLT_SOAK_INBOX_MAX = String(Number(values['inbox-max']))

// packet loss needs iptables in a namespace of our own: re-run there
if (loss > 0 && process.env.MOLT_SOAK_NAMESPACE == null) {
  const child = spawn('unshare', ['-n', 'sh', '-c', 'set -e; ip link set lo up; exec "$@"', 'sh', process.execPath, fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, MOLT_SOAK_NAMESPACE: '1' }
  })
  child.once('error', (err) => {
    log(`soak: cannot create a network namespace for packet loss (${err.message}); run as root, or with --loss 0`)
    process.exit(2)
  })
  child.once('exit', (code) => { process.exit(code ?? 1) })
} else {
  await main()
}

interface Proc { name: string, child: ChildProcess, events: Array<Record<string, any>>, ready: Promise<Record<string, any>> }

async function main (): Promise<void> {
  const dirs: string[] = []
  const dir = async (): Promise<string> => { const d = await mkdtemp(join(tmpdir(), 'molt-soak-')); dirs.push(d); return d }
  const heap = new Map<string, Array<[number, number]>>()
  /** heapUsed + arrayBuffers: buffered bytes (socket data, relayed chunks) live outside the JS heap */
  const memory = new Map<string, Array<[number, number]>>()
  const promised = new Map<string, { to: string, status: string }>()
  const got = new Map<string, Array<{ id: string, latency: number, t: number, route: string }>>()
  const sendFailures: string[] = []
  const procs = new Set<Proc>()

  const starts = new Map<string, number>()
  const start = (name: string, script: string, args: string[]): Proc => {
    starts.set(name, (starts.get(name) ?? 0) + 1)
    // heap is tracked per process instance: a restarted process starts a new series
    const instance = `${name}#${starts.get(name) as number}`
    // --expose-gc: each heap sample follows a full GC, so a slope is growth, not garbage
    // MOLT_SOAK_INSTANCE names its heap snapshots (bench/soak/heap-snapshots.ts)
    const child = spawn(process.execPath, ['--expose-gc', join(here, script), ...args], { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, MOLT_SOAK_INSTANCE: instance } })
    const events: Array<Record<string, any>> = []
    let onReady: (event: Record<string, any>) => void = () => {}
    const ready = new Promise<Record<string, any>>((resolve, reject) => {
      onReady = resolve
      child.once('exit', (code) => { reject(new Error(`${name} exited with ${String(code)} before it was ready`)) })
    })
    ready.catch(() => {})
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      let event: Record<string, any>
      try { event = JSON.parse(line) } catch { return }
      events.push(event)
      if (event.event === 'ready') onReady(event)
      else if (event.event === 'heap') {
        (heap.get(instance) ?? heap.set(instance, []).get(instance) as Array<[number, number]>).push([event.t, event.heapUsed])
        ;(memory.get(instance) ?? memory.set(instance, []).get(instance) as Array<[number, number]>).push([event.t, event.heapUsed + (event.arrayBuffers ?? 0)])
      }
      else if (event.event === 'sent') promised.set(event.id, { to: event.to, status: event.status })
      else if (event.event === 'got') (got.get(name) ?? got.set(name, []).get(name) as any[]).push({ id: event.id, latency: event.latency, t: event.t, route: event.route })
      else if (event.event === 'send-failed') sendFailures.push(event.error)
    })
    const proc = { name, child, events, ready }
    procs.add(proc)
    child.once('exit', () => { procs.delete(proc) })
    return proc
  }
  const stop = async (proc: Proc, signal: NodeJS.Signals): Promise<void> => {
    if (proc.child.exitCode != null || proc.child.signalCode != null) return
    const exited = new Promise(resolve => proc.child.once('exit', resolve))
    proc.child.kill(signal)
    await exited
  }

  try {
    const relayPorts = [await freePort(), await freePort()]
    if (loss > 0) {
      for (const port of relayPorts) {
        for (const direction of ['--dport', '--sport']) {
          execFileSync('iptables', ['-A', 'INPUT', '-i', 'lo', '-p', 'tcp', direction, String(port), '-m', 'statistic', '--mode', 'random', '--probability', String(loss), '-j', 'DROP'])
        }
      }
    }
    const relayDirs = [await dir(), await dir()]
    const relays: Proc[] = relayPorts.map((port, i) => start(`relay${i}`, 'relay.js', [relayDirs[i], String(port)]))
    const relayAddrs = (await Promise.all(relays.map(async r => r.ready))).map(e => e.address as string)

    // even agents listen on a port; odd ones only through the relays (as behind NAT)
    const agentPorts = await Promise.all(Array.from({ length: agentCount }, async (_, i) => i % 2 === 0 ? String(await freePort()) : '-'))
    const agentDirs = await Promise.all(Array.from({ length: agentCount }, async () => dir()))
    const agentArgs = (i: number): string[] => [agentDirs[i], agentPorts[i], relayAddrs.join(','), String(rate), values.mode as string]
    const agents: Proc[] = Array.from({ length: agentCount }, (_, i) => start(`agent${i}`, 'agent.js', agentArgs(i)))
    const peerIds = (await Promise.all(agents.map(async a => a.ready))).map(e => e.peerId as string)
    const peers = peerIds.map((peerId, i) => ({
      peerId,
      addrs: agentPorts[i] !== '-' ? [`/ip4/127.0.0.1/tcp/${agentPorts[i]}/p2p/${peerId}`] : relayAddrs.map(r => `${r}/p2p-circuit/p2p/${peerId}`)
    }))
    const introduce = (agent: Proc): void => { agent.child.stdin?.write(JSON.stringify({ cmd: 'peers', peers }) + '\n') }
    agents.forEach(introduce)
    const started = Date.now()
    log(`soak: ${agentCount} agents (${agentPorts.filter(p => p === '-').length} behind relays), 2 relays, ${rate} msg/s each, ${values.mode}, ${loss * 100}% loss, churn ${values['no-churn'] === true ? 'off' : 'on'}, ${durationMs / 1000} s`)

    let churns = { agents: 0, relays: 0 }
    let round = 0
    while (Date.now() - started < durationMs) {
      await sleep(Math.min(10_000, Math.max(1000, durationMs / 10)))
      if (values['no-churn'] === true || Date.now() - started >= durationMs) continue
      round++
      // agent0 and relay0 are never restarted: their heap over the whole run shows a leak under churn
      if (round % 3 === 0) {
        const i = 1
        await stop(relays[i], 'SIGKILL')
        await sleep(1000)
        relays[i] = start(`relay${i}`, 'relay.js', [relayDirs[i], String(relayPorts[i])])
        await relays[i].ready
        churns.relays++
      } else {
        const i = 1 + (round % (agentCount - 1))
        await stop(agents[i], 'SIGKILL')
        await sleep(2000)
        agents[i] = start(`agent${i}`, 'agent.js', agentArgs(i))
        await agents[i].ready
        introduce(agents[i])
        churns.agents++
      }
      log(`soak: ${Math.round((Date.now() - started) / 1000)} s, ${promised.size} promised, churn ${churns.agents} agent / ${churns.relays} relay restarts`)
    }
    const trafficEnded = Date.now()
    for (const agent of agents) agent.child.stdin?.write(JSON.stringify({ cmd: 'quiet' }) + '\n')
    // let the outboxes and mailboxes drain
    const received = (): Set<string> => new Set([...got.values()].flat().map(g => g.id))
    // a 'got' can come from an instance killed before it stored the message: also wait for every
    // outbox to report empty (heap lines, every 5 s) after the traffic stopped
    const outboxesEmpty = (): boolean => agents.every(a => {
      const last = a.events.findLast(e => e.event === 'heap')
      return last != null && last.t > trafficEnded && last.outbox === 0
    })
    const drainDeadline = Date.now() + 120_000
    const allReceived = (): boolean => {
      const ids = received()
      for (const id of promised.keys()) if (!ids.has(id)) return false
      return true
    }
    while (Date.now() < drainDeadline && (!allReceived() || !outboxesEmpty())) await sleep(500)
    const drainMs = Date.now() - trafficEnded
    await Promise.all([...procs].map(async p => stop(p, 'SIGTERM')))

    // ground truth: what each recipient's inbox holds
    const inboxCounts = new Map<string, number>()
    const stillQueued = new Set<string>()
    const queuedDetails: Array<Record<string, unknown>> = []
    for (let i = 0; i < agentCount; i++) {
      const db = await openDatabase(join(agentDirs[i], 'db'))
      try {
        const outbox = new Outbox(db, { maxMessages: 10_000_000, maxDeadLetters: 10_000_000 })
        await outbox.open()
        for (const entry of outbox.pending()) {
          stillQueued.add(entry.id)
          if (queuedDetails.length < 10) queuedDetails.push({ from: `agent${i}`, to: `agent${peerIds.indexOf(entry.peer)}`, id: entry.id, createdAt: entry.createdAt - started, lastError: entry.lastError })
        }
        const inbox = new Inbox(db, 10_000_000)
        await inbox.open()
        for (let after = 0; ;) {
          const page = await inbox.list({ after, limit: 5000 })
          if (page.length === 0) break
          for (const entry of page) {
            if (entry.message.op === 'query') inboxCounts.set(entry.message.id, (inboxCounts.get(entry.message.id) ?? 0) + 1)
          }
          after = page[page.length - 1].cursor
        }
      } finally {
        await db.close()
      }
    }
    // --inbox-max prunes the oldest entries: a pruned message counts as delivered by its 'got' event
    // (it was stored, then acked, then pruned); duplicates are then only found among the entries still held
    const pruning = values['inbox-max'] != null
    const seen = received()
    const arrived = (id: string): boolean => inboxCounts.has(id) || (pruning && seen.has(id))
    // a message still in its sender's outbox is pending (durable, retried on the next start), not lost
    const lost = [...promised.keys()].filter(id => !arrived(id) && !stillQueued.has(id))
    const duplicated = [...inboxCounts.values()].filter(n => n > 1).length
    const statuses: Record<string, number> = {}
    for (const { status } of promised.values()) statuses[status] = (statuses[status] ?? 0) + 1

    // latency per window of the run
    const windowMs = Math.max(10_000, Math.round(durationMs / 12 / 1000) * 1000)
    const samples = [...got.values()].flat()
    const windows: Array<{ from: number, messages: number, p50: number, p99: number }> = []
    for (let from = started; from < trafficEnded; from += windowMs) {
      const inWindow = samples.filter(s => s.t >= from && s.t < from + windowMs).map(s => s.latency)
      if (inWindow.length > 0) windows.push({ from: Math.round((from - started) / 1000), messages: inWindow.length, ...pick(summarize(inWindow)) })
    }
    // heap growth: least-squares slope over the second half of each long-lived process instance's samples
    // (a restarted instance lives ~30 s: too short for a slope; agent0/1 and relay0 run throughout)
    const growth = [...heap.entries()].filter(([, points]) => points.length >= 12)
      .map(([name, points]) => {
        const withBuffers = memory.get(name) ?? []
        return { name, ...slope(points.slice(Math.floor(points.length / 2))), withBuffers: slope(withBuffers.slice(Math.floor(withBuffers.length / 2))) }
      })
      .sort((a, b) => a.name.localeCompare(b.name))
    const routes: Record<string, number> = {}
    for (const s of samples) routes[s.route] = (routes[s.route] ?? 0) + 1

    const result = {
      durationS: Math.round((trafficEnded - started) / 1000),
      agents: agentCount,
      ratePerAgent: rate,
      loss,
      mode: values.mode,
      churn: churns,
      promised: promised.size,
      statuses,
      delivered: [...promised.keys()].filter(arrived).length,
      pending: [...promised.keys()].filter(id => !arrived(id) && stillQueued.has(id)).length,
      queuedAtEnd: queuedDetails,
      lost: lost.length,
      duplicated,
      sendFailures: sendFailures.length,
      routes,
      drainS: Math.round(drainMs / 100) / 10,
      latencyWindows: windows,
      heapGrowth: growth,
      restartedInstances: [...heap.keys()].length - growth.length
    }
    if (values.json === true) {
      process.stdout.write(JSON.stringify(result) + '\n')
    } else {
      process.stdout.write([
        `soak: ${result.durationS} s, ${agentCount} agents, 2 relays, ${rate} msg/s per agent, ${values.mode}, ${loss * 100}% loss`,
        `churn: ${churns.agents} agent kills (SIGKILL) and ${churns.relays} relay kills, each restarted (agent0 and relay0 run throughout)`,
        `promised ${result.promised} (${JSON.stringify(statuses)}), delivered ${result.delivered}, still queued ${result.pending}, lost ${result.lost}, duplicated ${duplicated}; send() failures ${sendFailures.length}; drained ${result.drainS} s after traffic stopped`,
        `arrived by route: ${JSON.stringify(routes)}`,
        ...(pruning ? [`inboxes capped at ${values['inbox-max'] as string} messages: a pruned message counts as delivered by its recipient's message event; duplicates are checked among the ${inboxCounts.size} entries still held`] : []),
        '',
        '| from (s) | messages | p50 ms | p99 ms |',
        '|---|---|---|---|',
        ...windows.map(w => `| ${w.from} | ${w.messages} | ${w.p50.toFixed(1)} | ${w.p99.toFixed(1)} |`),
        '',
        `heap, sampled after a full GC every 5 s, of the processes that ran long enough (${[...heap.keys()].length - growth.length} restarted instances left out):`,
        '',
        '| process | heap samples | heap at end | growth (2nd half) | heap + ArrayBuffers at end | its growth (2nd half) |',
        '|---|---|---|---|---|---|',
        ...growth.map(g => `| ${g.name} | ${g.samples} | ${(g.last / 1048576).toFixed(1)} MiB | ${(g.perMinute / 1024).toFixed(1)} KiB/min | ${(g.withBuffers.last / 1048576).toFixed(1)} MiB | ${(g.withBuffers.perMinute / 1024).toFixed(1)} KiB/min |`)
      ].join('\n') + '\n')
    }
    process.exitCode = lost.length === 0 && (values.mode !== 'exactly-once' || duplicated === 0) ? 0 : 1
  } finally {
    await Promise.all([...procs].map(async p => stop(p, 'SIGKILL')))
    await Promise.all(dirs.map(async d => rm(d, { recursive: true, force: true })))
  }
}

function pick (s: { p50: number, p99: number }): { p50: number, p99: number } {
  return { p50: s.p50, p99: s.p99 }
}

function slope (points: Array<[number, number]>): { samples: number, last: number, perMinute: number } {
  const last = points.at(-1)?.[1] ?? 0
  if (points.length < 3) return { samples: points.length, last, perMinute: 0 }
  const t0 = points[0][0]
  const xs = points.map(p => (p[0] - t0) / 60_000)
  const ys = points.map(p => p[1])
  const mx = xs.reduce((a, b) => a + b, 0) / xs.length
  const my = ys.reduce((a, b) => a + b, 0) / ys.length
  let num = 0
  let den = 0
  for (let i = 0; i < xs.length; i++) {
    num += (xs[i] - mx) * (ys[i] - my)
    den += (xs[i] - mx) ** 2
  }
  return { samples: points.length, last, perMinute: den === 0 ? 0 : num / den }
}

function parseDuration (text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim())
  if (match == null) {
    process.stderr.write(`soak: --duration must look like 30s, 5m or 1h, got "${text}"\n`)
    process.exit(2)
  }
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[match[2] as 'ms' | 's' | 'm' | 'h' ?? 's']
  return Number(match[1]) * unit
}

