import type { Logger, PeerId, Stream } from '@libp2p/interface'
import { FrameDecoder, FrameError, encodeFrame, FRAME_ACK, FRAME_MESSAGE, FRAME_REJECT, FRAME_REPLY, FRAME_REQUEST } from './frames.js'
import { AckTimeoutError, SessionClosedError } from './errors.js'
import { PriorityQueue, type Priority } from './priority-queue.js'
import { ReplyReceiver, rejectionToError, type ReplyReceiverInit } from './replies.js'
import type { SpeakCounters } from './counters.js'

export interface SessionLimits {
  ackTimeout: number
  maxInFlight: number
  maxInFlightBytes: number
  maxFrameBytes: number
  /** Low-priority messages in flight at most: what a high-priority one can find ahead of it on the wire. @default maxInFlight */
  maxLowInFlight?: number
}

/** A send() waiting for room in the window; woken with its slot reserved */
interface SlotWaiter {
  wake: () => void
  bytes: number
  priority: Priority
}

interface Pending {
  resolve: () => void
  reject: (err: Error) => void
  bytes: number
  deadline: number
  low: boolean
}

/**
 * The sending half of a peer session: one long-lived stream on which messages
 * are pipelined (many in flight), frames from the same tick coalesced into one
 * stream.send(), and cumulative acks / per-message rejects read back.
 */
export class OutboundSession {
  private seq = 0
  private readonly pending = new Map<number, Pending>()
  private inFlightBytes = 0
  private queue: Uint8Array[] = []
  private queuedBytes = 0
  private flushScheduled = false
  private waitingForDrain = false
  /** Sends waiting for room, by priority band (priority-queue.ts) */
  private readonly slotWaiters = new PriorityQueue<SlotWaiter>()
  /** Slots handed to woken waiters that have not taken them yet */
  private reserved = { count: 0, bytes: 0, low: 0 }
  private lowInFlight = 0
  private readonly decoder: FrameDecoder
  private readonly sweep: ReturnType<typeof setInterval>
  private closedWith?: Error
  /** /molt/speak/1.1.0: the peer's REPLYs on this stream (replies.ts); undefined on 1.0.0 */
  private readonly replies?: ReplyReceiver

  constructor (
    readonly peer: PeerId,
    private readonly stream: Stream,
    private readonly limits: SessionLimits,
    private readonly log: Logger,
    private readonly onClose: (session: OutboundSession) => void,
    private readonly counters?: SpeakCounters,
    replies?: ReplyReceiverInit
  ) {
    this.decoder = new FrameDecoder(limits.maxFrameBytes)
    if (replies !== undefined) {
      this.replies = new ReplyReceiver(replies, (frames) => { this.writeNow(frames) }, (on) => {
        if (on && stream.readStatus === 'paused') stream.resume()
        else if (!on && stream.readStatus === 'readable') stream.pause()
      })
    }
    stream.addEventListener('message', (evt) => { this.onData(evt.data) })
    stream.addEventListener('close', (evt) => {
      this.shutdown(new SessionClosedError(`session to ${peer} closed${evt.error != null ? `: ${evt.error.message}` : ''}`))
    })
    stream.addEventListener('remoteCloseWrite', () => {
      this.shutdown(new SessionClosedError(`${peer} closed the session`))
      stream.close().catch(() => {})
    })
    this.sweep = setInterval(() => { this.checkAckDeadlines() }, Math.min(1000, limits.ackTimeout))
    this.sweep.unref?.()
  }

  get isOpen (): boolean {
    return this.closedWith == null && this.stream.status === 'open'
  }

  get inFlight (): number {
    return this.pending.size
  }

  /** Whether the peer may answer on this stream (/molt/speak/1.1.0) */
  get takesReplies (): boolean {
    return this.replies !== undefined
  }

  /**
   * Queue one encoded message; resolves when the peer acknowledges it. When
   * the window is full it waits in its priority band: a high-priority message
   * takes the next free slot before a backlog of lower ones. A `request` waits
   * for a reply: on 1.1.0 it travels as a REQUEST, whose ACK the peer may hold
   * to carry it with the reply
   */
  async send (body: Uint8Array, signal?: AbortSignal, priority: Priority = 'normal', request = false): Promise<void> {
    const low = priority === 'low'
    // behind anyone already waiting (their order is the bands'), or until the window has room
    if (this.slotWaiters.size > 0 || !this.hasRoom(low)) {
      const waiter: SlotWaiter = { wake: () => {}, bytes: body.byteLength, priority }
      await new Promise<void>((resolve) => {
        waiter.wake = resolve
        this.slotWaiters.push(waiter, priority)
        // a free slot a capped band cannot take is this one's now
        this.wakeWaiters()
      })
      this.unreserve(waiter)
      if (signal?.aborted === true) {
        this.wakeWaiters()
        signal.throwIfAborted()
      }
    }
    if (this.closedWith != null) throw this.closedWith

    const seq = ++this.seq
    const frame = encodeFrame(request && this.replies !== undefined ? FRAME_REQUEST : FRAME_MESSAGE, seq, body)
    const acked = new Promise<void>((resolve, reject) => {
      this.pending.set(seq, { resolve, reject, bytes: frame.byteLength, deadline: Date.now() + this.limits.ackTimeout, low })
    })
    if (low) this.lowInFlight++
    this.inFlightBytes += frame.byteLength
    this.queue.push(frame)
    this.queuedBytes += frame.byteLength
    this.scheduleFlush(request)
    if (signal == null) return acked
    // abort detaches the caller; the frame may still be delivered and acked
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => { reject(signal.reason) }
      if (signal.aborted) { onAbort(); return }
      signal.addEventListener('abort', onAbort, { once: true })
      acked.then(resolve, reject).finally(() => { signal.removeEventListener('abort', onAbort) })
    })
  }

  close (): void {
    this.writeNow(this.replies?.take() ?? [])
    this.shutdown(new SessionClosedError('session closed locally'))
    this.stream.close().catch(() => {})
  }

  private scheduleFlush (request = false): void {
    if (this.flushScheduled || this.waitingForDrain) return
    this.flushScheduled = true
    if (this.pending.size <= 1 || request) {
      // idle session: a lone message (a request, a reply) leaves at once (a REQUEST
      // also when the peer still holds the previous one's ACK to send it with a reply)
      queueMicrotask(this.runFlush)
    } else {
      // busy session: setImmediate lets every send() of this turn join one write
      setImmediate(this.runFlush)
    }
  }

  private readonly runFlush = (): void => {
    this.flushScheduled = false
    this.flush()
  }

  /** Frames that leave now (a REJECT, a held ACK whose delay ran out), with whatever is queued */
  private writeNow (frames: Uint8Array[]): void {
    if (frames.length === 0) return
    for (const frame of frames) {
      this.queue.push(frame)
      this.queuedBytes += frame.byteLength
    }
    if (!this.waitingForDrain) this.flush()
  }

  private flush (): void {
    if (this.queue.length === 0 || this.closedWith != null) return
    // the ACK held for the peer's REPLYs rides along (replies.ts)
    const held = this.replies?.take()
    if (held !== undefined && held.length > 0) {
      this.queue.unshift(...held)
      this.queuedBytes += held[0].byteLength
    }
    this.counters?.written(this.queue)
    const data = this.queue.length === 1 ? this.queue[0] : Buffer.concat(this.queue, this.queuedBytes)
    this.queue = []
    this.queuedBytes = 0
    let writable: boolean
    try {
      writable = this.stream.send(data)
    } catch (err: any) {
      this.shutdown(new SessionClosedError(`write failed: ${err.message}`))
      return
    }
    if (!writable) {
      this.waitingForDrain = true
      this.stream.onDrain().then(() => {
        this.waitingForDrain = false
        this.flush()
      }, (err) => {
        this.shutdown(new SessionClosedError(`stream failed while draining: ${err.message}`))
      })
    }
  }

  private onData (chunk: Uint8Array | import('uint8arraylist').Uint8ArrayList): void {
    this.decoder.push(chunk)
    try {
      for (let frame = this.decoder.next(); frame != null; frame = this.decoder.next()) {
        if (frame.type === FRAME_ACK) {
          this.ackThrough(frame.seq)
        } else if (frame.type === FRAME_REJECT) {
          this.rejectOne(frame.seq, frame.body)
        } else if (frame.type === FRAME_REPLY && this.replies !== undefined) {
          this.replies.push(frame)
        } else {
          throw new FrameError(`unexpected frame type ${frame.type} from the receiver`, 'malformed')
        }
      }
    } catch (err: any) {
      this.log.error('bad frame from %p - %e', this.peer, err)
      this.stream.abort(err)
    }
  }

  private ackThrough (seq: number): void {
    for (const [pendingSeq, entry] of this.pending) {
      if (pendingSeq > seq) break
      this.settle(pendingSeq, entry)
      entry.resolve()
    }
  }

  private rejectOne (seq: number, body: Uint8Array): void {
    const error = rejectionToError(body)
    if (seq === 0) {
      // connection-level refusal: the receiver is closing the stream
      this.shutdown(error)
      return
    }
    const entry = this.pending.get(seq)
    if (entry == null) return
    this.settle(seq, entry)
    entry.reject(error)
  }

  private settle (seq: number, entry: Pending): void {
    this.pending.delete(seq)
    this.inFlightBytes -= entry.bytes
    if (entry.low) this.lowInFlight--
    this.wakeWaiters()
  }

  private hasRoom (low: boolean): boolean {
    return this.pending.size + this.reserved.count < this.limits.maxInFlight &&
      this.inFlightBytes + this.reserved.bytes < this.limits.maxInFlightBytes &&
      (!low || this.lowInFlight + this.reserved.low < (this.limits.maxLowInFlight ?? this.limits.maxInFlight))
  }

  /** Hand free slots to waiters, band by band (weighted round-robin); a low band at its cap keeps its place */
  private wakeWaiters (): void {
    while (this.slotWaiters.size > 0) {
      // once closed, everyone is woken (to throw the reason)
      const next = this.closedWith != null ? this.slotWaiters.shift() : this.slotWaiters.shift(band => this.hasRoom(band === 'low'))
      if (next === undefined) return
      this.reserved.count++
      this.reserved.bytes += next.bytes
      if (next.priority === 'low') this.reserved.low++
      next.wake()
    }
  }

  private unreserve (waiter: SlotWaiter): void {
    this.reserved.count--
    this.reserved.bytes -= waiter.bytes
    if (waiter.priority === 'low') this.reserved.low--
  }

  private checkAckDeadlines (): void {
    const oldest = this.pending.values().next().value
    if (oldest != null && oldest.deadline < Date.now()) {
      const err = new AckTimeoutError(`${this.peer} did not acknowledge within ${this.limits.ackTimeout} ms`)
      this.stream.abort(err)
      this.shutdown(err)
    }
  }

  private shutdown (err: Error): void {
    if (this.closedWith != null) return
    this.closedWith = err
    clearInterval(this.sweep)
    this.replies?.close()
    for (const [seq, entry] of this.pending) {
      this.pending.delete(seq)
      entry.reject(err)
    }
    this.inFlightBytes = 0
    this.lowInFlight = 0
    this.queue = []
    this.wakeWaiters()
    this.onClose(this)
  }
}
