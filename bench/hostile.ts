/**
 * Nested-JSON flood (issue #15): an honest peer's request/response latency to
 * an agent with and without an attacker that sends 24 speak frames of 1 MiB
 * of `[[[[…` per second, measured in the same run. A third run floods with
 * flat 1 MiB frames of the same size (a refused string): what remains of the
 * attack is the cost of the bytes, not of their nesting.
 *
 * Three processes: the target (bench/peer.ts), the honest peer (this one) and
 * the attacker (bench/attacker.ts, started for each flood and ended by its
 * PID), so the attacker's own CPU does not land on the measured nodes.
 */
import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'
import { multiaddr } from '@multiformats/multiaddr'
import type { PeerId } from '@libp2p/interface'
import { createMoltNode, type MoltNode } from '../src/index.js'
import { summarize } from './stats.js'
import { spawnPeer } from './api.js'

const here = dirname(fileURLToPath(import.meta.url))

export interface HostileBenchOptions {
  /** Honest requests per phase */
  requests: number
  /** Attack frames sent per second */
  rate: number
  log: (line: string) => void
}

export interface Phase { p50: number, p99: number, requests: number, failures: number, attackFrames: number }

export interface HostileBenchResult {
  baseline: Phase
  nested: Phase
  flat: Phase
}

const STREAMS = 4

export async function runHostileBench (options: HostileBenchOptions): Promise<HostileBenchResult> {
  const { log } = options
  const target = await spawnPeer()
  const dir = await mkdtemp(join(tmpdir(), 'molt-bench-hostile-'))
  let honest: MoltNode | undefined
  try {
    honest = await createMoltNode({ dataDir: dir, listen: ['/ip4/127.0.0.1/tcp/0'], heartbeatInterval: 0, processMetrics: false, libp2p: { connectionManager: { allow: ['/ip4/127.0.0.1'] } as any } })
    const client = honest
    await client.libp2p.dial(multiaddr(target.address))
    const peer = client.libp2p.getConnections()[0].remotePeer
    const measure = async (): Promise<Omit<Phase, 'attackFrames'>> => probe(client, peer, options.requests)
    // warm-up: connections, streams and JIT
    await probe(client, peer, 50)

    const baseline = { ...await measure(), attackFrames: 0 }
    log(`hostile: no attack p50 ${baseline.p50.toFixed(2)} ms, p99 ${baseline.p99.toFixed(2)} ms`)
    const nested = await underFlood(target.address, 'nested', options, measure)
    log(`hostile: nested flood p50 ${nested.p50.toFixed(2)} ms, p99 ${nested.p99.toFixed(2)} ms (${nested.attackFrames} frames of 1 MiB refused)`)
    const flat = await underFlood(target.address, 'flat', options, measure)
    log(`hostile: flat flood p50 ${flat.p50.toFixed(2)} ms, p99 ${flat.p99.toFixed(2)} ms (${flat.attackFrames} frames)`)
    return { baseline, nested, flat }
  } finally {
    await honest?.stop().catch(() => {})
    await target.stop()
    await rm(dir, { recursive: true, force: true })
  }
}

/** `count` sequential honest queries: latency percentiles in ms */
async function probe (honest: MoltNode, peer: PeerId, count: number): Promise<{ p50: number, p99: number, requests: number, failures: number }> {
  const samples: number[] = []
  let failures = 0
  for (let i = 0; i < count; i++) {
    const t = performance.now()
    try {
      await honest.request(peer, { op: 'query', p: { domain: 'probe', data: i } }, { timeout: 10_000 })
    } catch {
      // a timeout or a dropped connection: counted, and its time is a sample too
      failures++
    }
    samples.push(performance.now() - t)
  }
  const { p50, p99 } = summarize(samples)
  return { p50, p99, requests: count, failures }
}

/**
 * Run `measure` while an attacker process (bench/attacker.ts) sends
 * `options.rate` copies of the `body` frame per second to `target`, spread
 * over STREAMS raw speak streams: the report's 24 frames, every second. The
 * attacker is ended by its PID, whatever happens.
 */
async function underFlood (target: string, body: 'nested' | 'flat', options: HostileBenchOptions, measure: () => Promise<Omit<Phase, 'attackFrames'>>): Promise<Phase> {
  const child = spawn(process.execPath, [join(here, 'attacker.js'), JSON.stringify({ target, body, rate: options.rate, streams: STREAMS })], { stdio: ['ignore', 'pipe', 'inherit'] })
  const exited = new Promise<void>(resolve => { child.once('exit', () => { resolve() }) })
  const lines = createInterface({ input: child.stdout! })
  const queue: string[] = []
  const waiters: Array<(line: string) => void> = []
  lines.on('line', (line) => { const w = waiters.shift(); if (w != null) w(line); else queue.push(line) })
  const next = async (): Promise<any> => JSON.parse(queue.shift() ?? await Promise.race([
    new Promise<string>(resolve => { waiters.push(resolve) }),
    exited.then(async () => { throw new Error(`the attacker (pid ${child.pid}) exited with ${child.exitCode}`) })
  ]))
  try {
    await next()
    const phase = await measure()
    process.kill(child.pid!, 'SIGTERM')
    const { refused } = await next() as { refused: number }
    return { ...phase, attackFrames: refused }
  } finally {
    if (child.exitCode == null && child.signalCode == null) {
      // asked to stop above, or now if measuring failed; SIGKILL if it has not exited within 10 s
      process.kill(child.pid!, 'SIGTERM')
      const killer = setTimeout(() => { if (child.exitCode == null && child.signalCode == null) process.kill(child.pid!, 'SIGKILL') }, 10_000)
      await exited
      clearTimeout(killer)
    }
  }
}
