/**
 * Where a high-priority message waits (bench/priority.ts --trace): timestamps
 * taken at each step of its way, by wrapping speak's classes at run time (the
 * bench's own instrumentation; src/ carries no tracing code).
 *
 * Sender (this process): send() called → OutboundSession.send entered → frame
 * queued (seq assigned) → written to the stream → cumulative ACK covering it
 * read → send() resolved. Receiver (bench/priority-peer.ts): first bytes read
 * since its stream's previous batch → handed to the inbox pipeline (decoded,
 * checked) → inbox write durable → ACK queued. Clocks: performance.timeOrigin +
 * performance.now() in both processes (same machine).
 *
 * Only messages whose payload carries `trace: <key>` are traced; the
 * speak-level steps assume one traced message in flight at a time per session
 * (the bench sends high-priority messages one after another).
 */
import { writeFileSync } from 'node:fs'
import { OutboundSession } from '../src/services/speak/outbound-session.js'
import { InboundSession } from '../src/services/speak/inbound.js'
import { InboundPipeline } from '../src/node/inbound.js'
import { fmt, percentile } from './stats.js'

export const now = (): number => performance.timeOrigin + performance.now()

export interface SenderSteps { call: number, session?: number, queued?: number, written?: number, ackRead?: number, done?: number }
export interface ReceiverSteps { arrived?: number, decoded: number, stored?: number, ackQueued?: number }

interface SenderState { current?: SenderSteps, seq?: number }
const senderState = new WeakMap<object, SenderState>()

/**
 * Wrap OutboundSession so the steps of the next non-low message sent after
 * `arm(steps)` are recorded into `steps`
 */
export function traceSender (): { arm: (steps: SenderSteps) => void } {
  let armed: SenderSteps | undefined
  const proto = OutboundSession.prototype as any
  const send = proto.send
  proto.send = function (this: any, body: Uint8Array, signal?: AbortSignal, priority?: string) {
    let state = senderState.get(this)
    if (state == null) {
      state = {}
      senderState.set(this, state)
      const pending: Map<number, { low: boolean }> = this.pending
      const set = pending.set.bind(pending)
      const s = state
      // the pending entry is created the moment the frame gets its seq and is queued
      pending.set = (seq, entry) => {
        if (!entry.low && s.current != null && s.current.queued == null) {
          s.current.queued = now()
          s.seq = seq
        }
        return set(seq, entry)
      }
    }
    if (priority !== 'low' && armed != null) {
      armed.session = now()
      state.current = armed
      armed = undefined
    }
    return send.call(this, body, signal, priority)
  }
  const flush = proto.flush
  proto.flush = function (this: any) {
    const s = senderState.get(this)
    if (s?.current?.queued != null && s.current.written == null && this.queue.length > 0 && this.closedWith == null) s.current.written = now()
    return flush.call(this)
  }
  const ackThrough = proto.ackThrough
  proto.ackThrough = function (this: any, seq: number) {
    const s = senderState.get(this)
    if (s?.current != null && s.seq != null && seq >= s.seq && s.current.ackRead == null) s.current.ackRead = now()
    return ackThrough.call(this, seq)
  }
  return { arm: (steps) => { armed = steps } }
}

interface InboundTraceState { since?: number, open: Array<{ steps: ReceiverSteps, ackSeq: number }> }

/** Wrap the receiving side; returns the steps of every traced message, by its `trace` key */
export function traceReceiver (): Map<string, ReceiverSteps> {
  const traced = new Map<string, ReceiverSteps>()
  const states = new WeakMap<object, InboundTraceState>()
  const stateOf = (session: object): InboundTraceState => {
    let s = states.get(session)
    if (s == null) states.set(session, s = { open: [] })
    return s
  }
  let batchOf: InboundTraceState | undefined
  let decodedNow: ReceiverSteps[] = []

  const proto = InboundSession.prototype as any
  const onData = proto.onData
  proto.onData = function (this: any, data: unknown) {
    const s = stateOf(this)
    s.since ??= now()
    return onData.call(this, data)
  }
  const nextBatch = proto.nextBatch
  proto.nextBatch = function (this: any) {
    const s = stateOf(this)
    const arrived = s.since
    s.since = undefined
    batchOf = s
    decodedNow = []
    try {
      return nextBatch.call(this)
    } finally {
      for (const steps of decodedNow) {
        steps.arrived = arrived
        s.open.push({ steps, ackSeq: this.lastSeq })
      }
      batchOf = undefined
    }
  }
  const reply = proto.reply
  proto.reply = function (this: any, rejects: Uint8Array[], ackSeq: number) {
    const s = stateOf(this)
    const t = now()
    s.open = s.open.filter(({ steps, ackSeq: seq }) => {
      if (seq > ackSeq) return true
      steps.ackQueued = t
      return false
    })
    return reply.call(this, rejects, ackSeq)
  }

  const pipeline = InboundPipeline.prototype as any
  const receive = pipeline.receive
  pipeline.receive = async function (this: any, batch: Array<{ message: { p?: Record<string, unknown> } }>) {
    const mine: ReceiverSteps[] = []
    const t = now()
    for (const item of batch) {
      const key = item.message.p?.trace
      if (typeof key !== 'string') continue
      const steps: ReceiverSteps = { decoded: t }
      traced.set(key, steps)
      mine.push(steps)
    }
    if (batchOf != null) decodedNow.push(...mine)
    const done = receive.call(this, batch)
    if (mine.length === 0) return done
    await done
    const stored = now()
    for (const steps of mine) steps.stored = stored
  }
  return traced
}

/** Write the receiver's trace to `file` when the process exits */
export function writeTraceAtExit (traced: Map<string, ReceiverSteps>, file: string): void {
  process.on('exit', () => { writeFileSync(file, JSON.stringify([...traced])) })
}

const STEPS = [
  ['node.send → speak session', 'call', 'session', 's'],
  ['sender band queue (waiting for a slot)', 'session', 'queued', 's'],
  ['sender coalescing / write', 'queued', 'written', 's'],
  ['wire, yamux, receiver not reading', 'written', 'arrived', 'r'],
  ['receiver: buffered until decoded', 'arrived', 'decoded', 'r'],
  ['receiver: inbox write', 'decoded', 'stored', 'r'],
  ['receiver: ACK waits for batches ahead', 'stored', 'ackQueued', 'r'],
  ['ACK back to the sender', 'ackQueued', 'ackRead', 'x'],
  ['sender: ACK → send() resolves', 'ackRead', 'done', 's']
] as const

/** A table: each step's p50 / p99, and its mean share of the slowest 1 % */
export function breakdown (samples: Array<{ s: SenderSteps, r?: ReceiverSteps }>): string[] {
  const get = (x: { s: SenderSteps, r?: ReceiverSteps }, key: string): number | undefined => (x.s as any)[key] ?? (x.r as any)?.[key]
  const total = (x: { s: SenderSteps }): number => (x.s.done ?? NaN) - x.s.call
  const complete = samples.filter(x => STEPS.every(([, a, b]) => get(x, a) != null && get(x, b) != null))
  const slowest = [...complete].sort((a, b) => total(b) - total(a)).slice(0, Math.max(1, Math.ceil(complete.length / 100)))
  const lines = [
    `  ${complete.length} of ${samples.length} samples traced end to end`,
    '  | step | p50 ms | p99 ms | mean ms in the slowest 1 % |',
    '  |---|---|---|---|'
  ]
  for (const [name, a, b] of STEPS) {
    const d = complete.map(x => (get(x, b) as number) - (get(x, a) as number)).sort((x, y) => x - y)
    const slow = slowest.reduce((sum, x) => sum + (get(x, b) as number) - (get(x, a) as number), 0) / slowest.length
    lines.push(`  | ${name} | ${fmt(percentile(d, 50), 3)} | ${fmt(percentile(d, 99), 3)} | ${fmt(slow, 3)} |`)
  }
  const totals = complete.map(total).sort((x, y) => x - y)
  lines.push(`  | total | ${fmt(percentile(totals, 50), 3)} | ${fmt(percentile(totals, 99), 3)} | ${fmt(slowest.reduce((s, x) => s + total(x), 0) / slowest.length, 3)} |`)
  return lines
}
