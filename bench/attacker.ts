/**
 * The attacker of the hostile bench (bench/hostile.ts), in a process of its
 * own so its CPU is not the measured peers' CPU. argv[2] = JSON
 * { target, body: 'nested' | 'flat', rate, streams }: dials `target`, prints
 * {"ready":true}, then sends `rate` speak frames of ~1 MiB per second, spread
 * over `streams` raw speak streams (a stream the target closes is opened
 * again). On SIGTERM it prints {"refused":n} (the target's answers to attack
 * frames) and exits.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { multiaddr } from '@multiformats/multiaddr'
import type { Stream } from '@libp2p/interface'
import { createMoltNode, SPEAK_PROTOCOL } from '../src/index.js'
import { encodeFrame, FrameDecoder, FRAME_MESSAGE } from '../src/services/speak/frames.js'
import { MAX_MESSAGE_BYTES } from '../src/moltspeak/constants.js'

const { target, body: kind, rate, streams: streamCount } = JSON.parse(process.argv[2]) as { target: string, body: 'nested' | 'flat', rate: number, streams: number }

/** Just under the message limit, so the frame is read and refused, not skipped as oversized */
const BODY_BYTES = MAX_MESSAGE_BYTES - 64
/** `[[[[…` — what JSON.parse took ~300 ms of event loop over before the depth pre-scan; or `"aaaa…"`, valid JSON of the same size refused as not an object */
const body = kind === 'nested'
  ? new Uint8Array(BODY_BYTES).fill(0x5b)
  : (() => { const b = new Uint8Array(BODY_BYTES).fill(0x61); b[0] = 0x22; b[BODY_BYTES - 1] = 0x22; return b })()

const dataDir = await mkdtemp(join(tmpdir(), 'molt-bench-attacker-'))
const node = await createMoltNode({ dataDir, listen: [], heartbeatInterval: 0, processMetrics: false, libp2p: { connectionManager: { allow: ['/ip4/127.0.0.1'] } as any } })
const connection = await node.libp2p.dial(multiaddr(target))
const peer = connection.remotePeer

let refused = 0
const slots: Array<{ stream?: Stream, seq: number, opening?: Promise<void> }> = Array.from({ length: streamCount }, () => ({ seq: 0 }))
const open = (slot: typeof slots[number]): void => {
  slot.opening ??= node.libp2p.dialProtocol(peer, SPEAK_PROTOCOL).then((stream) => {
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
for (const slot of slots) open(slot)
await Promise.all(slots.map(async slot => slot.opening))
process.stdout.write(JSON.stringify({ ready: true }) + '\n')

let turn = 0
const timer = setInterval(() => {
  const slot = slots[turn++ % slots.length]
  if (slot.stream?.writeStatus === 'writable') slot.stream.send(encodeFrame(FRAME_MESSAGE, ++slot.seq, body))
  else open(slot)
}, 1000 / rate)

let stopping = false
process.on('SIGTERM', () => {
  // a second SIGTERM must not cut the clean-up short (the data dir would stay behind)
  if (stopping) return
  stopping = true
  clearInterval(timer)
  process.stdout.write(JSON.stringify({ refused }) + '\n')
  node.stop().catch(() => {}).then(async () => rm(dataDir, { recursive: true, force: true })).finally(() => process.exit(0))
})
