import type { Logger, PeerId } from '@libp2p/interface'
import { encodeFrame, FrameError, FRAME_ACK, FRAME_REJECT, type Frame } from './frames.js'
import { check, errorReply, DUPLICATE, Refusal } from './inbound-checks.js'
import { SessionClosedError, AckTimeoutError } from './errors.js'
import { MoltSpeakError, type MoltMessage, type ErrorCode } from '../../moltspeak/index.js'
import { parseBoundedJson } from '../../json/index.js'
import type { InboundMessage, MessagePolicy } from './inbound-types.js'
import type { Route } from '../../routing/route.js'

/**
 * Replies on the request's stream (/molt/speak/1.1.0, protocols/speak.md):
 * the replier's half (ReplySender, inside an InboundSession) numbers its
 * REPLY frames and waits for their ACK; the requester's half (ReplyReceiver,
 * inside an OutboundSession) checks and stores them like any inbound message
 * and holds their ACK for its next write.
 */

/** The REJECTs for a batch whose store failed (never ACKed: the sender retries) */
export async function refusalsIfNotStored (stored: Promise<void>, batch: InboundMessage[], seqs: number[], policy: Pick<MessagePolicy, 'localAgent'>, log: Logger): Promise<Uint8Array[]> {
  try {
    await stored
    return []
  } catch (err: any) {
    log.error('could not accept %d messages from %p - %e', batch.length, batch[0]?.peer, err)
    return batch.map((item, i) => encodeFrame(FRAME_REJECT, seqs[i], errorReply(policy.localAgent(), item.message,
      new MoltSpeakError('E_INTERNAL', `receiver could not store the message: ${err.message as string}`))))
  }
}

/** A REJECT body is a MoltSpeak `error` message; surface it as a MoltSpeakError */
export function rejectionToError (body: Uint8Array): MoltSpeakError {
  try {
    const reply = parseBoundedJson(body) as MoltMessage
    const p = reply.p as { code?: string, message?: string, field?: string }
    const error = new MoltSpeakError((p.code ?? 'E_INTERNAL') as ErrorCode, p.message ?? 'rejected by peer', { field: p.field })
    ;(error as MoltSpeakError & { reply?: MoltMessage }).reply = reply
    return error
  } catch {
    return new MoltSpeakError('E_PARSE', 'peer sent an unreadable rejection')
  }
}

interface PendingReply {
  resolve: () => void
  reject: (err: Error) => void
  deadline: number
}

/** The replier's REPLY frames on one inbound stream: numbered, settled by the requester's ACK/REJECT */
export class ReplySender {
  private seq = 0
  private readonly pending = new Map<number, PendingReply>()
  private sweep?: ReturnType<typeof setInterval>
  private closedWith?: Error

  constructor (private readonly ackTimeout: number, private readonly onAckTimeout: (err: Error) => void) {}

  /** Number the next REPLY; `acked` settles with the requester's ACK or REJECT */
  next (): { seq: number, acked: Promise<void> } {
    if (this.closedWith != null) throw this.closedWith
    const seq = ++this.seq
    const acked = new Promise<void>((resolve, reject) => {
      this.pending.set(seq, { resolve, reject, deadline: Date.now() + this.ackTimeout })
    })
    if (this.sweep == null) {
      this.sweep = setInterval(() => { this.checkDeadlines() }, Math.min(1000, this.ackTimeout))
      this.sweep.unref?.()
    }
    return { seq, acked }
  }

  /** An ACK or REJECT from the requester, about our REPLYs */
  onFrame (frame: Frame): void {
    if (frame.type === FRAME_ACK) {
      for (const [seq, entry] of this.pending) {
        if (seq > frame.seq) break
        this.pending.delete(seq)
        entry.resolve()
      }
    } else {
      const entry = this.pending.get(frame.seq)
      if (entry === undefined) return
      this.pending.delete(frame.seq)
      entry.reject(rejectionToError(frame.body))
    }
    this.stopSweepIfIdle()
  }

  close (err: Error = new SessionClosedError('session closed')): void {
    if (this.closedWith != null) return
    this.closedWith = err
    for (const entry of this.pending.values()) entry.reject(err)
    this.pending.clear()
    this.stopSweepIfIdle()
  }

  private stopSweepIfIdle (): void {
    if (this.pending.size === 0 && this.sweep != null) {
      clearInterval(this.sweep)
      this.sweep = undefined
    }
  }

  private checkDeadlines (): void {
    const oldest = this.pending.values().next().value
    if (oldest !== undefined && oldest.deadline < Date.now()) {
      const err = new AckTimeoutError(`the requester did not acknowledge a reply within ${this.ackTimeout} ms`)
      this.close(err)
      this.onAckTimeout(err)
    }
  }
}

/** REPLY batches being stored per stream before the requester stops reading (as MAX_BATCHES_STORING inbound) */
const MAX_REPLY_BATCHES_STORING = 4

export interface ReplyReceiverInit {
  peer: PeerId
  peerKey: string | undefined
  route: Route
  policy: Pick<MessagePolicy, 'localAgent' | 'receive' | 'onRefused' | 'maxMessageBytes' | 'requireSignatures' | 'replayWindowMs' | 'maxClockSkewMs' | 'replay' | 'onDuplicate' | 'authorize'>
  ackDelay: number
  log: Logger
}

/**
 * The requester's side of REPLY frames: the same checks as any inbound
 * message, stored in batches (one per event-loop turn), each ACKed after its
 * store. The ACK is held (at most `ackDelay`) for the session's next write —
 * nobody waits on it — unless a REJECT must leave, which goes at once.
 */
export class ReplyReceiver {
  private lastSeq = 0
  private batch: InboundMessage[] = []
  private seqs: number[] = []
  private rejects: Uint8Array[] = []
  private scheduled = false
  private acks: Promise<void> = Promise.resolve()
  private heldAck = 0
  private timer?: ReturnType<typeof setTimeout>
  private closed = false
  /** Batches handed to `receive` and not yet stored: at MAX_REPLY_BATCHES_STORING reading pauses */
  private storing = 0

  constructor (
    private readonly init: ReplyReceiverInit,
    private readonly write: (frames: Uint8Array[]) => void,
    /** Stop / restart reading the stream (yamux backpressure on a peer that floods REPLYs) */
    private readonly reading: (on: boolean) => void = () => {}
  ) {}

  push (frame: Frame): void {
    if (frame.seq <= this.lastSeq) throw new FrameError(`reply sequence ${frame.seq} does not increase`, 'malformed')
    this.lastSeq = frame.seq
    const { policy, peer } = this.init
    const checked = frame.oversizedBytes != null
      ? new Refusal(new MoltSpeakError('E_INVALID_PARAM', `message of ${frame.oversizedBytes} bytes exceeds the ${policy.maxMessageBytes} byte limit`), undefined)
      : check(frame.body, peer, this.init.peerKey, policy)
    if (checked instanceof Refusal) {
      policy.onRefused?.(peer, checked.error)
      this.rejects.push(encodeFrame(FRAME_REJECT, frame.seq, errorReply(policy.localAgent(), checked.refused, checked.error)))
    } else if (checked !== DUPLICATE) {
      this.batch.push({ message: checked.message, json: checked.json, peer, route: this.init.route })
      this.seqs.push(frame.seq)
    }
    if (!this.scheduled) {
      this.scheduled = true
      queueMicrotask(this.store)
    }
  }

  /** The held ACK, for the session's write that is about to leave (then nothing is held) */
  take (): Uint8Array[] {
    if (this.heldAck === 0) return []
    const ack = encodeFrame(FRAME_ACK, this.heldAck)
    this.heldAck = 0
    clearTimeout(this.timer)
    this.timer = undefined
    return [ack]
  }

  close (): void {
    this.closed = true
    clearTimeout(this.timer)
  }

  /** Resolves when every REPLY read so far is stored and its ACK due */
  async drained (): Promise<void> {
    await this.acks
    this.flushHeld()
  }

  private readonly store = (): void => {
    this.scheduled = false
    const { batch, seqs, rejects } = this
    this.batch = []
    this.seqs = []
    this.rejects = []
    const ackSeq = this.lastSeq
    // nobody waits on the ACK of a REPLY (it rides with our next write): the store may wait to share a write
    // (not the batch after which reading pauses: that one starts the write)
    const deferrable = this.storing + 1 < MAX_REPLY_BATCHES_STORING
    const stored = batch.length > 0 ? this.init.policy.receive(batch, deferrable ? { deferrable } : undefined) : Promise.resolve()
    if (++this.storing === MAX_REPLY_BATCHES_STORING) this.reading(false)
    this.acks = this.acks.then(async () => {
      const failed = await refusalsIfNotStored(stored, batch, seqs, this.init.policy, this.init.log)
      if (this.storing-- === MAX_REPLY_BATCHES_STORING && !this.closed) this.reading(true)
      this.due([...rejects, ...failed], ackSeq)
    })
  }

  private due (rejects: Uint8Array[], ackSeq: number): void {
    if (this.closed) return
    this.heldAck = ackSeq
    if (rejects.length > 0) {
      // a REJECT leaves at once, before the ACK that covers its seq
      this.write([...rejects, ...this.take()])
      return
    }
    this.timer ??= setTimeout(this.flushHeld, this.init.ackDelay)
  }

  private readonly flushHeld = (): void => {
    const ack = this.take()
    if (ack.length > 0 && !this.closed) this.write(ack)
  }
}
