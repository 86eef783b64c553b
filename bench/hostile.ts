/**
 * Nested-JSON flood (issue #15): an honest peer's request/response latency to
 * an agent with and without an attacker that sends 24 speak frames of 1 MiB
 * of `[[[[…` per second, measured in the same run. A third run floods with
 * flat 1 MiB frames of the same size (a refused string): what remains of the
 * attack is the cost of the bytes, not of their nesting.
 *
 * The target is its own process (bench/peer.ts); the honest peer and the
 * attacker share this one.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { multiaddr } from '@multiformats/multiaddr'
import type { PeerId, Stream } from '@libp2p/interface'
import { createMoltNode, SPEAK_PROTOCOL, type MoltNode } from '../src/index.js'
import { encodeFrame, FrameDecoder, FRAME_MESSAGE } from '../src/services/speak/frames.js'
import { MAX_MESSAGE_BYTES } from '../src/moltspeak/constants.js'
import { summarize } from './stats.js'
import { spawnPeer } from './api.js'

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

/** Just under the message limit, so the frame is read and refused, not skipped as oversized */
const BODY_BYTES = MAX_MESSAGE_BYTES - 64
const STREAMS = 4

/** `[[[[…` — what JSON.parse took ~300 ms of event loop over before the depth pre-scan */
const nestedBody = new Uint8Array(BODY_BYTES).fill(0x5b)
/** `"aaaa…"` — valid JSON of the same size, refused as not an object: the cost of the bytes alone */
const flatBody = (() => { const b = new Uint8Array(BODY_BYTES).fill(0x61); b[0] = 0x22; b[BODY_BYTES - 1] = 0x22; return b })()

export async function runHostileBench (options: HostileBenchOptions): Promise<HostileBenchResult> {
  const { log } = options
  const target = await spawnPeer()
  const dirs: string[] = []
  const nodes: MoltNode[] = []
  const node = async (): Promise<MoltNode> => {
    const dir = await mkdtemp(join(tmpdir(), 'molt-bench-hostile-'))
    dirs.push(dir)
    const n = await createMoltNode({ dataDir: dir, listen: ['/ip4/127.0.0.1/tcp/0'], heartbeatInterval: 0, processMetrics: false, libp2p: { connectionManager: { allow: ['/ip4/127.0.0.1'] } as any } })
    nodes.push(n)
    return n
  }
  try {
    const honest = await node()
    const attacker = await node()
    const address = multiaddr(target.address)
    await honest.libp2p.dial(address)
    await attacker.libp2p.dial(address)
    const peer = honest.libp2p.getConnections()[0].remotePeer
    // warm-up: connections, streams and JIT
    await probe(honest, peer, 50)

    const baseline = { ...await probe(honest, peer, options.requests), attackFrames: 0 }
    log(`hostile: no attack p50 ${baseline.p50.toFixed(2)} ms, p99 ${baseline.p99.toFixed(2)} ms`)
    const nested = await underFlood(attacker, peer, nestedBody, options, async () => probe(honest, peer, options.requests))
    log(`hostile: nested flood p50 ${nested.p50.toFixed(2)} ms, p99 ${nested.p99.toFixed(2)} ms (${nested.attackFrames} frames of 1 MiB refused)`)
    const flat = await underFlood(attacker, peer, flatBody, options, async () => probe(honest, peer, options.requests))
    log(`hostile: flat flood p50 ${flat.p50.toFixed(2)} ms, p99 ${flat.p99.toFixed(2)} ms (${flat.attackFrames} frames)`)
    return { baseline, nested, flat }
  } finally {
    await Promise.all(nodes.map(async n => n.stop().catch(() => {})))
    await target.stop()
    await Promise.all(dirs.map(async d => rm(d, { recursive: true, force: true })))
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
 * Run `measure` while the attacker sends `rate` copies of `body` per second,
 * spread evenly over STREAMS raw speak streams (a stream the target closes is
 * opened again): the report's 24 frames, every second
 */
async function underFlood (attacker: MoltNode, peer: PeerId, body: Uint8Array, options: HostileBenchOptions, measure: () => Promise<{ p50: number, p99: number, requests: number, failures: number }>): Promise<Phase> {
  let refused = 0
  const streams: Array<{ stream?: Stream, seq: number, opening?: Promise<void> }> = Array.from({ length: STREAMS }, () => ({ seq: 0 }))
  const open = (slot: typeof streams[number]): void => {
    slot.opening ??= attacker.libp2p.dialProtocol(peer, SPEAK_PROTOCOL).then((stream) => {
      const decoder = new FrameDecoder(2 * 1024 * 1024)
      stream.addEventListener('message', (evt) => {
        decoder.push(evt.data)
        for (let f = decoder.next(); f != null; f = decoder.next()) refused++
      })
      stream.addEventListener('close', () => { slot.stream = undefined })
      slot.stream = stream
      slot.seq = 0
    }, () => {}).finally(() => { slot.opening = undefined })
  }
  let turn = 0
  const timer = setInterval(() => {
    const slot = streams[turn++ % STREAMS]
    if (slot.stream?.writeStatus === 'writable') slot.stream.send(encodeFrame(FRAME_MESSAGE, ++slot.seq, body))
    else open(slot)
  }, 1000 / options.rate)
  try {
    const phase = await measure()
    return { ...phase, attackFrames: refused }
  } finally {
    clearInterval(timer)
    await Promise.all(streams.map(async slot => slot.stream?.close().catch(() => {})))
  }
}
