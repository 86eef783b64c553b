/**
 * Relay benchmarks. (1) Relayed vs direct between two processes on one
 * machine: acknowledged throughput and request/response latency of 1 KiB
 * MoltSpeak messages, the direct figures measured in the same run, each beside
 * a raw js-libp2p echo over the same connection (the floor of the route) and
 * with the CPU µs and write(2) calls per exchange of every process. (2) Relay
 * capacity: RSS, heap and CPU of a molt relay process (DHT server, as `molt
 * relay` runs) while 100/500/1,000/5,000 clients hold reservations.
 * MOLT_BENCH_RELAY_PROFILE=<dir> writes a CPU profile of each idle window
 * (relay-<n>.cpuprofile) there. MOLT_BENCH_RELAY_SIZES=<n,n,…> replaces the
 * capacity rows (`none`: no capacity rows, only relayed vs direct).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createInterface, type Interface } from 'node:readline'
import { createMoltNode, type MoltNode } from '../src/index.js'
import type { PeerId } from '@libp2p/interface'
import { moltThroughput, moltRequests } from './speak.js'
import { summarize } from './stats.js'
import { echoRoundTrips, RAW_ECHO_PROTOCOL, RAW_LATE_ECHO_PROTOCOL } from './protocol.js'
import { processCpuMs, ownCpuMs } from './cpu.js'
import { readFileSync } from 'node:fs'
import { RELAY_PING_INTERVAL } from '../src/relay/constants.js'
import { openFileLimit, openFilesNeeded } from '../src/relay/open-files.js'

const here = dirname(fileURLToPath(import.meta.url))

interface Child { process: ChildProcess, lines: Interface, next: () => Promise<any> }

function start (script: string, args: string[], nodeArgs: string[] = []): Child {
  const child = spawn(process.execPath, [...nodeArgs, join(here, script), ...args], { stdio: ['pipe', 'pipe', 'inherit'] })
  const lines = createInterface({ input: child.stdout! })
  const queue: string[] = []
  const waiters: Array<(line: string) => void> = []
  lines.on('line', (line) => { const w = waiters.shift(); if (w != null) w(line); else queue.push(line) })
  const next = async (): Promise<any> => JSON.parse(queue.shift() ?? await new Promise<string>((resolve, reject) => {
    waiters.push(resolve)
    child.once('exit', (code) => { reject(new Error(`${script} exited with ${code}`)) })
  }))
  return { process: child, lines, next }
}

async function stopChild (child: Child): Promise<void> {
  child.process.stdin?.end()
  if (child.process.exitCode != null) return
  await new Promise(resolve => child.process.once('exit', resolve))
}

export interface RelayPathFigures {
  acked: number
  p50: number
  p99: number
  /** A raw js-libp2p echo of 1 KiB over the same connection, same run: the floor for a request/response on this route */
  rawEcho: { p50: number, p99: number }
  /** CPU µs and write(2) calls per exchange of each process (client, relay when relayed, peer): molt request/response vs raw echo */
  perExchange: { molt: ExchangeCost, rawEcho: ExchangeCost }
}

/** Per process: CPU µs, write(2) and read(2) calls per exchange (reads ≈ wake-ups for the network) */
export type ExchangeCost = Record<string, { cpuMicros: number, writes: number, reads: number }>

/** write(2)- and read(2)-family calls of `pid` so far (Linux /proc/<pid>/io `syscw`, `syscr`; NaN elsewhere) */
function processIo (pid: number): { writes: number, reads: number } {
  try {
    const io = readFileSync(`/proc/${pid}/io`, 'utf8')
    return { writes: Number(/syscw:\s*(\d+)/.exec(io)?.[1] ?? NaN), reads: Number(/syscr:\s*(\d+)/.exec(io)?.[1] ?? NaN) }
  } catch {
    return { writes: NaN, reads: NaN }
  }
}

/** What `work` (of `exchanges` exchanges) cost each process, per exchange */
async function costOf (pids: Record<string, number>, exchanges: number, work: () => Promise<number[]>): Promise<{ samples: number[], cost: ExchangeCost }> {
  const before = Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, { cpu: pid === process.pid ? ownCpuMs() : processCpuMs(pid), ...processIo(pid) }]))
  const samples = await work()
  const cost: ExchangeCost = {}
  for (const [name, pid] of Object.entries(pids)) {
    const cpu = (pid === process.pid ? ownCpuMs() : processCpuMs(pid)) - before[name].cpu
    const io = processIo(pid)
    cost[name] = { cpuMicros: cpu * 1000 / exchanges, writes: (io.writes - before[name].writes) / exchanges, reads: (io.reads - before[name].reads) / exchanges }
  }
  return { samples, cost }
}

function addCost (total: ExchangeCost, part: ExchangeCost, weight: number): void {
  for (const [name, { cpuMicros, writes, reads }] of Object.entries(part)) {
    const t = total[name] ??= { cpuMicros: 0, writes: 0, reads: 0 }
    t.cpuMicros += cpuMicros * weight
    t.writes += writes * weight
    t.reads += reads * weight
  }
}

const formatCost = (cost: ExchangeCost): string => Object.entries(cost).map(([name, c]) => `${name} ${Math.round(c.cpuMicros)} µs ${c.writes.toFixed(1)} writes ${c.reads.toFixed(1)} reads`).join(', ')

export interface RelayPathResult {
  direct: RelayPathFigures
  relayed: RelayPathFigures
}


/**
 * 1 KiB echoed one at a time on one stream of the open connection (relayed
 * or direct: `dialProtocol` would dial again rather than use a limited one)
 */
async function rawEchoOverConnection (node: MoltNode, peer: PeerId, roundTrips: number, protocol = RAW_ECHO_PROTOCOL): Promise<number[]> {
  const connection = node.libp2p.getConnections(peer).find(c => c.status === 'open')
  if (connection === undefined) throw new Error(`no open connection to ${peer} for the raw echo`)
  return echoRoundTrips(await connection.newStream(protocol, { runOnLimitedConnection: true }), roundTrips)
}

export async function runRelayPathBench (options: { messages: number, roundTrips: number, log: (line: string) => void }): Promise<RelayPathResult> {
  const relay = start('relay-host.js', [])
  const dataDir = await mkdtemp(join(tmpdir(), 'molt-bench-relay-client-'))
  const children: Child[] = [relay]
  let client: MoltNode | undefined
  try {
    const relayAddress = (await relay.next()).address as string
    const measure = async (peerArgs: string[], relays: string[], label: string): Promise<RelayPathFigures> => {
      const peer = start('peer.js', peerArgs)
      const pids: Record<string, number> = { client: process.pid, ...(relays.length > 0 ? { relay: relay.process.pid! } : {}), peer: peer.process.pid! }
      children.push(peer)
      const address = (await peer.next()).address as string
      client ??= await createMoltNode({ dataDir, listen: [], relays, heartbeatInterval: 0, libp2p: { connectionManager: { allow: ['/ip4/127.0.0.1'] } as any } })
      const id = await client.resolvePeer(address)
      await moltThroughput(client, id, 2000)
      await moltRequests(client, id, 200)
      await rawEchoOverConnection(client, id, 200)
      const acked = await moltThroughput(client, id, options.messages)
      // molt and the raw echo alternate in rounds, so a burst of load elsewhere on the machine falls on both
      const molt: number[] = []
      const raw: number[] = []
      const moltCost: ExchangeCost = {}
      const rawCost: ExchangeCost = {}
      const rounds = 4
      const perRound = Math.ceil(options.roundTrips / rounds)
      for (let round = 0; round < rounds; round++) {
        const m = await costOf(pids, perRound, async () => moltRequests(client!, id, perRound))
        molt.push(...m.samples)
        addCost(moltCost, m.cost, 1 / rounds)
        const r = await costOf(pids, perRound, async () => rawEchoOverConnection(client!, id, perRound))
        raw.push(...r.samples)
        addCost(rawCost, r.cost, 1 / rounds)
      }
      // the echo answered a macrotask later: what the window update leaving ahead of an asynchronous reply costs
      const late = await costOf(pids, options.roundTrips / 2, async () => rawEchoOverConnection(client!, id, options.roundTrips / 2, RAW_LATE_ECHO_PROTOCOL))
      options.log(`    raw echo answered a macrotask later: p50 ${summarize(late.samples).p50.toFixed(3)} ms; ${formatCost(late.cost)}`)
      const { p50, p99 } = summarize(molt)
      const rawEcho = summarize(raw)
      const route = client.libp2p.getConnections(id).map(c => c.remoteAddr.toString().includes('/p2p-circuit') ? 'relayed' : 'direct')
      options.log(`  ${label}: ${Math.round(acked)} msg/s acked, request/response p50 ${p50.toFixed(3)} ms p99 ${p99.toFixed(3)} ms; raw echo p50 ${rawEcho.p50.toFixed(3)} ms p99 ${rawEcho.p99.toFixed(3)} ms (connections: ${route.join(',')})`)
      options.log(`    per exchange, molt: ${formatCost(moltCost)}; raw echo: ${formatCost(rawCost)}`)
      await stopChild(peer)
      return { acked, p50, p99, rawEcho: { p50: rawEcho.p50, p99: rawEcho.p99 }, perExchange: { molt: moltCost, rawEcho: rawCost } }
    }
    // the client listens nowhere: neither side can dial the other directly in the relayed run
    const relayed = await measure([relayAddress], [relayAddress], 'relayed')
    await client?.stop()
    client = undefined
    const direct = await measure([], [], 'direct')
    return { direct, relayed }
  } finally {
    await client?.stop().catch(() => {})
    await Promise.all(children.map(stopChild))
    await rm(dataDir, { recursive: true, force: true })
  }
}

export interface RelayCapacityResult {
  agents: number
  reserved: number
  rssMiB: number
  heapMiB: number
  heapPerReservationKiB: number
  idleCpuPercent: number
}

/**
 * How long the relay's CPU is measured once every reservation is held, ms:
 * one relay ping interval (src/relay/constants.ts RELAY_PING_INTERVAL), so
 * each connection is pinged once by the relay and every
 * CONNECTION_PING_INTERVAL by its holder, as in a steady state
 */
const IDLE_WINDOW = RELAY_PING_INTERVAL

/** Clients per reserver host process */
const CLIENTS_PER_HOST = 250

/**
 * The capacity rows to run: MOLT_BENCH_RELAY_SIZES (comma-separated counts,
 * `none` or empty for none) over the caller's sizes
 */
export function relayCapacitySizes (sizes: number[], env: string | undefined = process.env.MOLT_BENCH_RELAY_SIZES): number[] {
  if (env === undefined) return sizes
  if (env.trim() === '' || env.trim() === 'none') return []
  const parsed = env.split(',').map(s => Number(s.trim()))
  if (parsed.some(n => !Number.isInteger(n) || n < 1)) throw new Error(`MOLT_BENCH_RELAY_SIZES must be comma-separated positive counts or none, got ${env}`)
  return parsed
}

export async function runRelayCapacityBench (options: {
  sizes: number[]
  log: (line: string) => void
  /** `stock`: the clients ping the relay every 10 s as stock js-libp2p does, instead of molt's interval. @default 'molt' */
  clientPing?: 'molt' | 'stock'
}): Promise<RelayCapacityResult[]> {
  const results: RelayCapacityResult[] = []
  const sizes = relayCapacitySizes(options.sizes)
  if (sizes.length === 0) return results
  const files = await openFileLimit()
  const largest = Math.max(...sizes)
  // the relay holds a socket per reservation (src/relay/open-files.ts; it refuses to start without them);
  // the clients' sockets are spread over one process per CLIENTS_PER_HOST; loopback has ~28,000 ephemeral ports for them
  if (files !== undefined && files < openFilesNeeded(largest)) throw new Error(`${largest} reservations need ${openFilesNeeded(largest)} open files; this process may open ${files} (raise it: ulimit -n)`)
  for (const size of sizes) {
    const relay = start('relay-host.js', [JSON.stringify({ dht: true, maxReservations: size })], ['--expose-gc'])
    const hosts: Child[] = []
    try {
      const relayAddress = (await relay.next()).address as string
      relay.process.stdin!.write('stats\n')
      const base = await relay.next()
      let reserved = 0
      for (let i = 0; i < size; i += CLIENTS_PER_HOST) {
        const host = start('reserver-host.js', [JSON.stringify({ relay: relayAddress, count: Math.min(CLIENTS_PER_HOST, size - i), stockPing: options.clientPing === 'stock' })])
        hosts.push(host)
        reserved += (await host.next()).reserved as number
      }
      await new Promise(resolve => setTimeout(resolve, 2000))
      const profileDir = process.env.MOLT_BENCH_RELAY_PROFILE
      if (profileDir !== undefined) {
        relay.process.stdin!.write('profile-start\n')
        await relay.next()
      }
      relay.process.stdin!.write('stats\n')
      const before = await relay.next()
      await new Promise(resolve => setTimeout(resolve, IDLE_WINDOW))
      relay.process.stdin!.write('stats\n')
      const after = await relay.next()
      if (profileDir !== undefined) {
        relay.process.stdin!.write(`profile-stop ${join(profileDir, `relay-${size}.cpuprofile`)}\n`)
        options.log(`  profile: ${(await relay.next()).profile as string}`)
      }
      const cpuMs = (after.cpuUserMs + after.cpuSystemMs) - (before.cpuUserMs + before.cpuSystemMs)
      const result: RelayCapacityResult = {
        agents: size,
        reserved: after.reservations,
        rssMiB: after.rss / 1024 / 1024,
        heapMiB: after.heapUsed / 1024 / 1024,
        heapPerReservationKiB: (after.heapUsed - base.heapUsed) / Math.max(1, after.reservations) / 1024,
        idleCpuPercent: cpuMs / IDLE_WINDOW * 100
      }
      options.log(`  ${size} agents (${reserved} reserved by clients, ${after.reservations} at relay): RSS ${result.rssMiB.toFixed(0)} MiB, heap ${result.heapMiB.toFixed(0)} MiB, ${result.heapPerReservationKiB.toFixed(1)} KiB heap per reservation, idle CPU ${result.idleCpuPercent.toFixed(1)}%`)
      results.push(result)
    } finally {
      await Promise.all(hosts.map(stopChild))
      await stopChild(relay)
    }
  }
  return results
}
