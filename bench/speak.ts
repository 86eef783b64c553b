/**
 * Speak benchmark: 1 KiB MoltSpeak messages between two processes over one
 * connection, beside raw js-libp2p streams measured in the same run.
 */
import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'
import { multiaddr } from '@multiformats/multiaddr'
import { createMoltNode, type MoltNode } from '../src/index.js'
import type { Libp2p, PeerId, Stream } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { echoRoundTrips, MESSAGE_BYTES, RAW_ECHO_PROTOCOL, RAW_SINK_PROTOCOL, rawLibp2p } from './protocol.js'
import { summarize, fmt } from './stats.js'
import { cpuDuring } from './cpu.js'

export interface SpeakBenchOptions {
  messages: number
  roundTrips: number
  rounds: number
  log: (line: string) => void
}

export interface SpeakBenchResult {
  rawOnePerSend: number
  rawCoalesced: number
  moltAcked: number
  rawEcho: { p50: number, p99: number }
  moltRequest: { p50: number, p99: number }
  /** CPU µs per exchange of the requester (this process) and the bench peer: raw echo vs molt request/response */
  cpu: { echo: { requester: number, peer: number }, request: { requester: number, peer: number } }
}

const payload = new Uint8Array(MESSAGE_BYTES).fill(0x61)
/** varint(1024) ‖ 1 KiB: the raw baselines frame messages like any real protocol must */
const framed = Uint8Array.from([0x80, 0x08, ...payload])

/** The raw baselines run between stock js-libp2p nodes (protocol.ts rawLibp2p), one in each process */
async function rawThroughput (libp2p: Libp2p, peer: Multiaddr, messages: number, perSend: number): Promise<number> {
  const stream: Stream = await libp2p.dialProtocol(peer, RAW_SINK_PROTOCOL)
  const done = new Promise<void>((resolve, reject) => {
    stream.addEventListener('message', () => { resolve() })
    // closed before the sink's answer (e.g. the connection was dropped under load): fail, never wait forever
    stream.addEventListener('close', (evt) => { reject(evt.error ?? new Error('raw sink stream closed before its answer')) })
  })
  const header = new Uint8Array(4)
  new DataView(header.buffer).setUint32(0, messages)
  const batch = perSend === 1 ? framed : Buffer.concat(Array.from({ length: perSend }, () => framed))
  const start = performance.now()
  stream.send(header)
  for (let sent = 0; sent < messages; sent += perSend) {
    if (!stream.send(batch)) await stream.onDrain()
  }
  await done
  const seconds = (performance.now() - start) / 1000
  await stream.close().catch(() => {})
  return messages / seconds
}

async function rawEcho (libp2p: Libp2p, peer: Multiaddr, roundTrips: number): Promise<number[]> {
  return echoRoundTrips(await libp2p.dialProtocol(peer, RAW_ECHO_PROTOCOL), roundTrips)
}

/** A query whose serialised MoltSpeak JSON is ≈ 1 KiB */
function moltPayload (): Record<string, unknown> {
  return { domain: 'bench', data: 'a'.repeat(MESSAGE_BYTES - 330) }
}

export async function moltThroughput (node: MoltNode, peer: PeerId, messages: number, window = 2048): Promise<number> {
  const p = moltPayload()
  let next = 0
  const start = performance.now()
  const worker = async (): Promise<void> => {
    while (next < messages) {
      next++
      await node.send(peer, { op: 'stream', p: { action: 'chunk', stream_id: 'bench', ...p } })
    }
  }
  await Promise.all(Array.from({ length: window }, worker))
  return messages / ((performance.now() - start) / 1000)
}

export async function moltRequests (node: MoltNode, peer: PeerId, roundTrips: number): Promise<number[]> {
  const p = moltPayload()
  const samples: number[] = []
  for (let i = 0; i < roundTrips; i++) {
    const start = performance.now()
    await node.request(peer, { op: 'query', p })
    samples.push(performance.now() - start)
  }
  return samples
}

/** The requester's stream writes so far (speak counters; the peer's are in its own process) */
function speakWrites (node: MoltNode): { writes: number, ackOnly: number } {
  const { writes, ackOnlyWrites } = node.libp2p.services.speak.stats()
  return { writes, ackOnly: ackOnlyWrites }
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]

export async function runSpeakBench (options: SpeakBenchOptions): Promise<SpeakBenchResult> {
  const here = dirname(fileURLToPath(import.meta.url))
  const child = spawn(process.execPath, [...(process.env.MOLT_BENCH_PROFILE != null ? ['--cpu-prof', '--cpu-prof-dir=' + process.env.MOLT_BENCH_PROFILE] : []), join(here, 'peer.js')], { stdio: ['pipe', 'pipe', 'inherit'] })
  const dataDir = await mkdtemp(join(tmpdir(), 'molt-bench-'))
  let node: MoltNode | undefined
  let node10: MoltNode | undefined
  let rawNode: Libp2p | undefined
  const dataDir10 = await mkdtemp(join(tmpdir(), 'molt-bench-'))
  try {
    const line = await new Promise<string>((resolve, reject) => {
      createInterface({ input: child.stdout }).once('line', resolve)
      child.once('exit', (code) => { reject(new Error(`bench peer exited with ${code}`)) })
    })
    const { address: moltAddress, rawAddress } = JSON.parse(line) as { address: string, rawAddress: string }
    const address = multiaddr(moltAddress)
    const rawPeer = multiaddr(rawAddress)
    rawNode = await rawLibp2p()
    node = await createMoltNode({ dataDir, listen: ['/ip4/127.0.0.1/tcp/0'], libp2p: { connectionManager: { allow: ['/ip4/127.0.0.1'] } as any } })
    const peer = await node.resolvePeer(address)
    // the same exchange from a requester pinned to the old protocol (replies on the replier's stream, every ACK its own write), same run
    node10 = await createMoltNode({ dataDir: dataDir10, listen: ['/ip4/127.0.0.1/tcp/0'], speak: { protocol: '/molt/speak/1.0.0' }, libp2p: { connectionManager: { allow: ['/ip4/127.0.0.1'] } as any } })
    await node10.resolvePeer(address)
    await moltRequests(node10, peer, 200)
    options.log(`  connected to bench peer ${peer.toString().slice(-8)}; warming up`)
    await rawThroughput(rawNode, rawPeer, 2000, 1)
    await moltThroughput(node, peer, 2000)
    await rawEcho(rawNode, rawPeer, 200)
    await moltRequests(node, peer, 200)

    const before = speakWrites(node)
    await moltRequests(node, peer, 100)
    const after = speakWrites(node)
    options.log(`  requester: ${fmt((after.writes - before.writes) / 100, 2)} stream writes per request/response (${fmt((after.ackOnly - before.ackOnly) / 100, 2)} carrying only ACKs), ${node.libp2p.services.speak.stats().frames.request > 0 ? 'replies on the request\'s stream (/molt/speak/1.1.0)' : 'replies on the replier\'s stream (/molt/speak/1.0.0)'}`)

    const runs = { one: [] as number[], coalesced: [] as number[], molt: [] as number[] }
    const echo: number[] = []
    const request: number[] = []
    const cpu = { echo: { requester: 0, peer: 0 }, request: { requester: 0, peer: 0 } }
    /** round trips, CPU per exchange summed into `into` (divided by the count of all rounds' exchanges at the end) */
    const counted = async (into: { requester: number, peer: number }, work: () => Promise<number[]>): Promise<number[]> => {
      const { result, cpuMs } = await cpuDuring({ peer: child.pid }, work)
      into.requester += cpuMs.self
      into.peer += cpuMs.peer
      return result
    }
    const request10: number[] = []
    // a raw round whose connection was dropped is measured again (up to 3 times, a second apart): on a loaded
    // machine libp2p's connection monitor aborts connections whose ping waits too long behind the raw flood
    const raw = async (perSend: number): Promise<number> => {
      for (let attempt = 1; ; attempt++) {
        try {
          return await rawThroughput(rawNode!, rawPeer, options.messages, perSend)
        } catch (err: any) {
          if (attempt >= 3) throw err
          options.log(`  raw throughput failed (${String(err?.message ?? err?.type ?? err)}); measuring again`)
          await new Promise(resolve => setTimeout(resolve, 1000))
        }
      }
    }
    for (let round = 1; round <= options.rounds; round++) {
      runs.one.push(await raw(1))
      runs.coalesced.push(await raw(64))
      runs.molt.push(await moltThroughput(node, peer, options.messages))
      echo.push(...await counted(cpu.echo, async () => rawEcho(rawNode!, rawPeer, options.roundTrips)))
      request.push(...await counted(cpu.request, async () => moltRequests(node!, peer, options.roundTrips)))
      request10.push(...await moltRequests(node10, peer, options.roundTrips))
      options.log(`  round ${round}/${options.rounds}: raw 1/send ${fmt(runs.one.at(-1)!)} msg/s, raw coalesced ${fmt(runs.coalesced.at(-1)!)} msg/s, molt acked ${fmt(runs.molt.at(-1)!)} msg/s`)
    }
    const e = summarize(echo)
    const r = summarize(request)
    const r10 = summarize(request10)
    for (const side of [cpu.echo, cpu.request]) {
      side.requester *= 1000 / echo.length
      side.peer *= 1000 / echo.length
    }
    options.log(`  CPU per exchange: raw echo requester ${fmt(cpu.echo.requester)} µs + peer ${fmt(cpu.echo.peer)} µs; molt request/response requester ${fmt(cpu.request.requester)} µs + peer ${fmt(cpu.request.peer)} µs`)
    options.log(`  request/response, same run: /molt/speak/1.1.0 p50 ${fmt(r.p50, 3)} / p99 ${fmt(r.p99, 3)} ms; pinned to 1.0.0 p50 ${fmt(r10.p50, 3)} / p99 ${fmt(r10.p99, 3)} ms (${fmt(r.p50 / r10.p50, 2)}× / ${fmt(r.p99 / r10.p99, 2)}×)`)
    return {
      rawOnePerSend: median(runs.one),
      rawCoalesced: median(runs.coalesced),
      moltAcked: median(runs.molt),
      rawEcho: { p50: e.p50, p99: e.p99 },
      moltRequest: { p50: r.p50, p99: r.p99 },
      cpu
    }
  } finally {
    await node?.stop().catch(() => {})
    await node10?.stop().catch(() => {})
    await rawNode?.stop()?.catch(() => {})
    await rm(dataDir10, { recursive: true, force: true })
    child.stdin.end()
    await rm(dataDir, { recursive: true, force: true })
  }
}
