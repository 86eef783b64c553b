/**
 * molt as users run it, beside NATS core in the same run: a requester using
 * molt's SDK in this process against `molt agent --echo` in another process
 * (local API, metrics and logging on: `--log-format json` writes one line per
 * received message, read and discarded here as a log shipper would), 1 KiB
 * requests one at a time; then acknowledged throughput through that agent.
 * The NATS rows: core request/reply through nats-server to a responder
 * process, and core publish → subscribe (bench/nats.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'
import { multiaddr } from '@multiformats/multiaddr'
import { createMoltNode, type MoltNode } from '../src/index.js'
import { MESSAGE_BYTES } from './protocol.js'
import { moltThroughput, moltRequests } from './speak.js'
import { runNatsCore } from './nats.js'
import { runNatsJetStreamRequests } from './nats-jetstream.js'
import { summarize, fmt } from './stats.js'
import { cpuDuring } from './cpu.js'
import { inspectFlags, inspectorUrl, profileRemote, profileSelf } from './profile.js'

export interface AgentBenchOptions {
  roundTrips: number
  messages: number
  log: (line: string) => void
  /** Measure the acknowledged throughput too. @default true */
  throughput?: boolean
  /** Measure the NATS baseline too. @default true */
  nats?: boolean
  /**
   * Round trips each path makes before the measured ones, molt and NATS alike.
   * molt's path runs far more JavaScript than NATS's client: after 300 it is
   * still being compiled (V8's compiler threads took ≈ 180 µs per exchange of
   * the measured window then, 35 after 3,000). @default 2000
   */
  warmup?: number
}

/** CPU µs per request/response exchange, per process (cpu.ts) */
export type CpuPerExchange = Record<string, number>

export interface AgentBenchResult {
  molt: { p50: number, p99: number, acked: number, cpu: CpuPerExchange }
  nats?: { p50: number, p99: number, pubSub: number, cpu: CpuPerExchange }
  /** NATS JetStream request/reply: request and reply each stored in a file-store stream before delivery (nats-jetstream.ts) */
  natsDurable?: { p50: number, p99: number, cpu: CpuPerExchange }
}

interface Agent { address: string, pid: number | undefined, inspector?: string, stop: () => Promise<void> }

/**
 * `molt agent --echo` on 127.0.0.1 in its own process; with MOLT_BENCH_PROFILE=<dir>
 * it gets an inspector on a loopback port, for a profile of the measured window (profile.ts)
 */
async function startAgent (dataDir: string): Promise<Agent> {
  const here = dirname(fileURLToPath(import.meta.url))
  const cli = join(here, '..', 'src', 'cli', 'main.js')
  const inspect = inspectFlags()
  const child: ChildProcess = spawn(process.execPath, [...inspect, cli, 'agent', '--echo', '--no-mdns', '--data-dir', dataDir,
    '--listen', '/ip4/127.0.0.1/tcp/0', '--api-port', '0', '--log-format', 'json'], { stdio: ['ignore', 'pipe', inspect.length > 0 ? 'pipe' : 'inherit'] })
  const inspector = inspect.length > 0 ? inspectorUrl(child.stderr!) : undefined
  inspector?.catch(() => {})
  const exited = new Promise(resolve => child.once('exit', resolve))
  const stop = async (): Promise<void> => {
    if (child.exitCode == null && child.signalCode == null) child.kill('SIGTERM')
    const timer = setTimeout(() => { child.kill('SIGKILL') }, 10_000)
    await exited
    clearTimeout(timer)
  }
  try {
    const address = await new Promise<string>((resolve, reject) => {
      const lines = createInterface({ input: child.stdout! })
      lines.on('line', (line) => {
        // every line is read (and dropped) so the agent never blocks on a full pipe
        if (!line.includes('"listening"')) return
        const event = JSON.parse(line) as { msg: string, addresses?: string[] }
        if (event.msg === 'listening' && event.addresses?.[0] != null) resolve(event.addresses[0])
      })
      child.once('exit', (code) => { reject(new Error(`molt agent exited with ${code}`)) })
    })
    return { address, pid: child.pid, inspector: await inspector, stop }
  } catch (err) {
    await stop()
    throw err
  }
}

export async function runAgentBench (options: AgentBenchOptions): Promise<AgentBenchResult> {
  const warmup = options.warmup ?? 2000
  const agentDir = await mkdtemp(join(tmpdir(), 'molt-bench-agent-'))
  const dataDir = await mkdtemp(join(tmpdir(), 'molt-bench-requester-'))
  let agent: Agent | undefined
  let node: MoltNode | undefined
  let molt: AgentBenchResult['molt']
  try {
    agent = await startAgent(agentDir)
    node = await createMoltNode({ dataDir, listen: ['/ip4/127.0.0.1/tcp/0'], heartbeatInterval: 0, libp2p: { connectionManager: { allow: ['/ip4/127.0.0.1'] } as any } })
    const peer = await node.resolvePeer(multiaddr(agent.address))
    options.log(`  molt agent ${peer.toString().slice(-8)} running; warming up`)
    await moltRequests(node, peer, warmup)
    const profiles = [await profileSelf('requester'), await profileRemote(agent.inspector, 'agent')]
    const measured = await cpuDuring({ agent: agent.pid }, async () => moltRequests(node!, peer, options.roundTrips))
    for (const profile of profiles) await profile.stop()
    const r = summarize(measured.result)
    const cpu = perExchange(measured.cpuMs, options.roundTrips, { self: 'requester' })
    let acked = NaN
    if (options.throughput !== false) {
      await moltThroughput(node, peer, 2000)
      acked = await moltThroughput(node, peer, options.messages)
    }
    molt = { p50: r.p50, p99: r.p99, acked, cpu }
    options.log(`  SDK → molt agent: request/response p50 ${fmt(r.p50, 3)} ms, p99 ${fmt(r.p99, 3)} ms (CPU per exchange: ${describeCpu(cpu)}); acked ${fmt(acked)} msg/s`)
  } finally {
    await node?.stop().catch(() => {})
    await agent?.stop()
    await rm(dataDir, { recursive: true, force: true })
    await rm(agentDir, { recursive: true, force: true })
  }
  if (options.nats === false) return { molt }
  const nats = await runNatsCore({ roundTrips: options.roundTrips, messages: options.messages, size: MESSAGE_BYTES, warmup })
  if (nats === undefined) {
    options.log('  nats-server not installed: no NATS rows')
    return { molt }
  }
  const n = summarize(nats.requestSamples)
  const natsCpu = perExchange(nats.requestCpuMs, options.roundTrips, { self: 'requester' })
  options.log(`  NATS core: request/reply p50 ${fmt(n.p50, 3)} ms, p99 ${fmt(n.p99, 3)} ms (CPU per exchange: ${describeCpu(natsCpu)}); publish → subscribe ${fmt(nats.pubSubPerSecond)} msg/s`)
  const durable = await runNatsJetStreamRequests({ roundTrips: options.roundTrips, size: MESSAGE_BYTES, warmup })
  const d = durable !== undefined ? summarize(durable.samples) : undefined
  const durableCpu = durable !== undefined ? perExchange(durable.cpuMs, options.roundTrips, { self: 'requester' }) : undefined
  if (d !== undefined && durableCpu !== undefined) options.log(`  NATS JetStream (request and reply stored): p50 ${fmt(d.p50, 3)} ms, p99 ${fmt(d.p99, 3)} ms (CPU per exchange: ${describeCpu(durableCpu)})`)
  return {
    molt,
    nats: { p50: n.p50, p99: n.p99, pubSub: nats.pubSubPerSecond, cpu: natsCpu },
    ...(d !== undefined && durableCpu !== undefined ? { natsDurable: { p50: d.p50, p99: d.p99, cpu: durableCpu } } : {})
  }
}

/** CPU ms over a window → µs per exchange, processes renamed (`self` is this process) */
function perExchange (cpuMs: Record<string, number>, exchanges: number, names: Record<string, string>): CpuPerExchange {
  const out: CpuPerExchange = {}
  for (const [name, ms] of Object.entries(cpuMs)) out[names[name] ?? name] = ms * 1000 / exchanges
  return out
}

const describeCpu = (cpu: CpuPerExchange): string => Object.entries(cpu).map(([name, us]) => `${name} ${fmt(us)} µs`).join(', ')
