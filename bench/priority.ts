/**
 * Priority bands (protocols/speak.md, "Priority bands"): the p99 latency of
 * high-priority messages to a peer while 100,000 low-priority messages are
 * queued to the same peer, beside the p99 of the same high-priority messages
 * with nothing queued, in the same run. Target: ≤ 2×.
 *
 *   node dist/bench/priority.js [--quick] [--low-in-flight n]
 *
 * The far end is bench/priority-peer.ts (bench/peer.ts in its own process, a
 * molt node on 127.0.0.1, with its receiving side traced). Each high-priority
 * message is a best-effort `send()`, timed until the peer acknowledged it
 * (parsed, checked, written to its inbox), and traced step by step
 * (bench/priority-trace.ts): the run prints where the time went.
 */
import { spawn } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { multiaddr } from '@multiformats/multiaddr'
import type { PeerId } from '@libp2p/interface'
import { createMoltNode, type MoltNode } from '../src/index.js'
import { MAX_LOW_IN_FLIGHT } from '../src/services/speak/constants.js'
import { fmt, summarize } from './stats.js'
import { breakdown, now, traceSender, type ReceiverSteps, type SenderSteps } from './priority-trace.js'

export interface PriorityBenchOptions {
  /** Low-priority messages queued at once. @default 100000 */
  backlog: number
  /** High-priority messages timed in each phase. @default 1000 */
  samples: number
  /** speak's maxLowInFlight for the sender. @default MAX_LOW_IN_FLIGHT */
  lowInFlight?: number
  log: (line: string) => void
}

export interface PriorityBenchResult {
  idle: { p50: number, p99: number }
  backlog: { p50: number, p99: number }
  /** Low-priority messages still queued when the last high-priority one was acknowledged */
  lowLeft: number
  lowInFlight: number
  ratio: number
  /** Where the high-priority messages waited, step by step (bench/priority-trace.ts) */
  trace: { idle: string[], backlog: string[] }
}

const PAD = 'x'.repeat(200)

const tracer = traceSender()

async function timedHigh (node: MoltNode, peer: PeerId, phase: string, count: number, steps: Map<string, SenderSteps>, stop: () => boolean = () => false): Promise<number[]> {
  const samples: number[] = []
  for (let i = 0; i < count && !stop(); i++) {
    const trace = `${phase}-${i}`
    const step: SenderSteps = { call: now() }
    tracer.arm(step)
    const started = performance.now()
    await node.send(peer, { op: 'register', p: { band: 'high', i, trace } }, { priority: 'high', delivery: 'best-effort' })
    samples.push(performance.now() - started)
    step.done = now()
    steps.set(trace, step)
  }
  return samples
}

export async function runPriorityBench (options: PriorityBenchOptions): Promise<PriorityBenchResult> {
  const here = dirname(fileURLToPath(import.meta.url))
  const dataDir = await mkdtemp(join(tmpdir(), 'molt-bench-priority-'))
  const traceFile = join(dataDir, 'receiver-trace.json')
  const child = spawn(process.execPath, [join(here, 'priority-peer.js')], { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, MOLT_PRIORITY_TRACE: traceFile } })
  const exited = new Promise(resolve => child.once('exit', resolve))
  const sent = new Map<string, SenderSteps>()
  const lowInFlight = options.lowInFlight ?? MAX_LOW_IN_FLIGHT
  let node: MoltNode | undefined
  try {
    const line = await new Promise<string>((resolve, reject) => {
      createInterface({ input: child.stdout }).once('line', resolve)
      child.once('exit', (code) => { reject(new Error(`bench peer exited with ${code}`)) })
    })
    node = await createMoltNode({
      dataDir,
      listen: ['/ip4/127.0.0.1/tcp/0'],
      heartbeatInterval: 0,
      speak: { maxLowInFlight: lowInFlight },
      libp2p: { connectionManager: { allow: ['/ip4/127.0.0.1'] } as any }
    })
    const peer = await node.resolvePeer(multiaddr(JSON.parse(line).address))
    await timedHigh(node, peer, 'warm', 200, sent) // warm-up

    const idle = summarize(await timedHigh(node, peer, 'idle', options.samples, sent))
    options.log(`  no backlog: high p50 ${fmt(idle.p50, 3)} ms, p99 ${fmt(idle.p99, 3)} ms`)

    let lowDone = 0
    let lowFailed = 0
    const lows: Array<Promise<unknown>> = []
    for (let i = 0; i < options.backlog; i++) {
      lows.push(node.send(peer, { op: 'register', p: { band: 'low', i, pad: PAD } }, { priority: 'low', delivery: 'best-effort' }).then(() => { lowDone++ }, () => { lowDone++; lowFailed++ }))
    }
    // every low send has reached the session's queue before the first high one is timed
    await new Promise(resolve => setImmediate(resolve))
    const samples = await timedHigh(node, peer, 'backlog', options.samples, sent, () => lowDone >= options.backlog)
    const lowLeft = options.backlog - lowDone
    const busy = summarize(samples)
    options.log(`  ${fmt(options.backlog)} low queued: high p50 ${fmt(busy.p50, 3)} ms, p99 ${fmt(busy.p99, 3)} ms (${samples.length} samples; ${fmt(lowLeft)} low still queued at the end)`)
    await Promise.all(lows)
    if (lowFailed > 0) throw new Error(`${lowFailed} of ${options.backlog} low-priority sends failed`)
    await node.stop()
    child.stdin.end()
    await exited
    const received = new Map<string, ReceiverSteps>(JSON.parse(await readFile(traceFile, 'utf8')))
    const phase = (name: string): string[] => breakdown([...sent].filter(([key]) => key.startsWith(name + '-')).map(([key, s]) => ({ s, r: received.get(key) })))
    const trace = { idle: phase('idle'), backlog: phase('backlog') }
    return { idle: { p50: idle.p50, p99: idle.p99 }, backlog: { p50: busy.p50, p99: busy.p99 }, lowLeft, lowInFlight, ratio: busy.p99 / idle.p99, trace }
  } finally {
    await node?.stop().catch(() => {})
    child.stdin.end()
    if (child.exitCode == null) child.kill()
    await rm(dataDir, { recursive: true, force: true })
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, 'low-in-flight': { type: 'string' } } })
  const result = await runPriorityBench({
    backlog: values.quick ? 20_000 : 100_000,
    samples: values.quick ? 300 : 1000,
    lowInFlight: values['low-in-flight'] !== undefined ? Number(values['low-in-flight']) : undefined,
    log: (l) => { process.stdout.write(l + '\n') }
  })
  process.stdout.write([
    '', 'where a high-priority message waited, no backlog:', ...result.trace.idle,
    '', 'where a high-priority message waited, 100,000 low queued:', ...result.trace.backlog,
    '',
    '| high-priority messages to one peer (best-effort, acked) | p50 | p99 | ratio of p99 | target |',
    '|---|---|---|---|---|',
    `| no backlog | ${fmt(result.idle.p50, 3)} ms | ${fmt(result.idle.p99, 3)} ms | 1× | — |`,
    `| 100,000 low-priority queued to the same peer (maxLowInFlight ${result.lowInFlight}) | ${fmt(result.backlog.p50, 3)} ms | ${fmt(result.backlog.p99, 3)} ms | ${fmt(result.ratio, 2)}× | ≤ 2× — ${result.ratio <= 2 ? 'met' : '**missed**'} |`,
    ''
  ].join('\n') + '\n')
}
