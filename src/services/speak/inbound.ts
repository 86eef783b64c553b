import type { Connection, Logger, PeerId, Stream } from '@libp2p/interface'
import type { Uint8ArrayList } from 'uint8arraylist'
import { FrameDecoder, FrameError, encodeFrame, FRAME_ACK, FRAME_MESSAGE, FRAME_REJECT, FRAME_REPLY, FRAME_REQUEST } from './frames.js'
import { check, errorReply, DUPLICATE, Refusal } from './inbound-checks.js'
import type { InboundMessage, MessagePolicy } from './inbound-types.js'
import { refusalsIfNotStored, ReplySender } from './replies.js'
import { SessionClosedError } from './errors.js'
import type { SpeakCounters } from './counters.js'
import { MoltSpeakError } from '../../moltspeak/index.js'
import { connectionRoute, type Route } from '../../routing/route.js'

/** How a message reached this node */
export type { Route } from '../../routing/route.js'
export { errorReply } from './inbound-checks.js'
export type { InboundMessage } from './inbound-types.js'

export interface InboundPolicy extends MessagePolicy {
  maxFrameBytes: number
  maxSkippableFrameBytes: number
  readHighWaterBytes: number
  /**
   * /molt/speak/1.1.0 streams: a REQUEST was accepted, its reply may come back
   * on this stream (sendReply); and how long an ACK nobody waits on is held
   */
  replies?: { onRequest: (session: InboundSession, id: string) => void, ackDelay: number, ackTimeout: number }
  counters?: SpeakCounters
}

/** Batches handed to `receive` but not yet acknowledged, per stream, before reading waits */
const MAX_BATCHES_STORING = 4

/**
 * Frames checked per batch. Without a cap, 4 MiB of buffered 7-byte invalid
 * frames became one synchronous batch of ~600,000 REJECTs (seconds of blocked
 * event loop and ~250 MB of replies at once); capped, a batch's replies are at
 * most ~0.5 MB and other streams and peers run between batches.
 */
const MAX_BATCH_FRAMES = 1024

/**
 * The receiving half of a peer session: one inbound speak stream. Decodes
 * frames, checks each message, hands the accepted ones to the node in batches,
 * then sends one cumulative ack per batch. Bad messages get a REJECT carrying a
 * MoltSpeak `error`; unparseable framing gets a final REJECT(seq 0) and the
 * stream is closed. Other streams are unaffected.
 */
export class InboundSession {
  private readonly peer: PeerId
  private readonly peerKey: string | undefined
  private readonly route: Route
  private readonly frames: FrameDecoder
  private lastSeq = 0
  /** The ack of the newest batch: acks leave in order, each after its batch was stored */
  private acks: Promise<void> = Promise.resolve()
  /** Batches handed to `receive` and not yet acknowledged */
  private storing = 0
  /** A `process()` loop is running (it is never entered twice) */
  private processing = false
  /** The peer closed its writing side: finish what is buffered, then close */
  private ended = false
  /** Nothing more is read or answered */
  private finished = false
  /**
   * Set when our replies (acks, rejects) are not leaving because the peer
   * does not read them: yamux would buffer them without limit, so reading
   * stops until they drain (a peer that never reads is then cut off by the
   * stream's inactivity timeout)
   */
  private writeBlocked = false
  /** REJECTs and the newest ACK waiting for this turn's write (see reply()) */
  private replies: Uint8Array[] = []
  private ackThrough = 0
  private replyScheduled = false
  /** /molt/speak/1.1.0: our REPLYs on this stream; the held ACK's timer (an ACK that waits for a REPLY to ride with) */
  private readonly replySender?: ReplySender
  private ackTimer?: ReturnType<typeof setTimeout>

  constructor (private readonly stream: Stream, connection: Connection, private readonly policy: InboundPolicy, private readonly log: Logger) {
    this.peer = connection.remotePeer
    this.peerKey = this.peer.publicKey != null ? 'ed25519:' + Buffer.from(this.peer.publicKey.raw).toString('base64') : undefined
    this.route = connectionRoute(connection)
    this.frames = new FrameDecoder(policy.maxFrameBytes, policy.maxSkippableFrameBytes)
    if (policy.replies !== undefined) {
      this.replySender = new ReplySender(policy.replies.ackTimeout, (err) => { this.stream.abort(err) })
    }
    stream.addEventListener('message', (evt: { data: Uint8Array | Uint8ArrayList }) => { this.onData(evt.data) })
    stream.addEventListener('close', () => {
      this.finished = true
      clearTimeout(this.ackTimer)
      this.replySender?.close()
    })
    stream.addEventListener('remoteCloseWrite', () => {
      this.ended = true
      this.kick()
    })
  }

  /** Resolves when every batch read so far has been acknowledged (or refused) */
  async drained (): Promise<void> {
    await this.acks
    if (this.ackTimer !== undefined) this.flushReplies()
  }

  /**
   * /molt/speak/1.1.0: send `body`, a reply to a REQUEST of this stream, as a
   * REPLY frame; the ACK due on this stream (held, or queued this turn) leaves
   * in the same write. Resolves when the requester acknowledges it.
   */
  async sendReply (body: Uint8Array): Promise<void> {
    if (this.replySender === undefined || this.finished || this.stream.writeStatus !== 'writable') {
      throw new SessionClosedError('the request\'s stream takes no reply')
    }
    const { seq, acked } = this.replySender.next()
    this.replies.push(encodeFrame(FRAME_REPLY, seq, body))
    this.scheduleReplies()
    return acked
  }

  private onData (data: Uint8Array | Uint8ArrayList): void {
    if (this.finished) return
    this.frames.push(data)
    // backpressure: stop reading (and so stop granting yamux window) while behind
    if (this.frames.bufferedBytes > this.policy.readHighWaterBytes && this.stream.readStatus === 'readable') this.stream.pause()
    this.kick()
  }

  private kick (): void {
    this.process().catch((err) => { this.log.error('speak stream from %p failed - %e', this.peer, err) })
  }

  private write (chunks: Uint8Array[]): void {
    if (chunks.length === 0 || this.stream.writeStatus !== 'writable') return
    this.policy.counters?.written(chunks)
    try {
      if (!this.stream.send(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks))) this.writeBlocked = true
    } catch (err: any) {
      this.log('could not write to %p - %e', this.peer, err)
    }
  }

  /**
   * Queue a batch's REJECTs and its cumulative ACK. Batches acknowledged in the
   * same turn (their stores finished together, e.g. in one group write of the
   * inbox) leave in one write with one ACK: the last one covers the others,
   * and every REJECT still comes before the ACK that covers its seq.
   */
  private reply (rejects: Uint8Array[], ackSeq: number, hold = false): void {
    this.replies.push(...rejects)
    this.ackThrough = ackSeq
    // 1.1.0: the ACK of REQUESTs only waits (≤ ackDelay) for a REPLY to leave with
    if (hold && this.replies.length === 0 && !this.replyScheduled) {
      this.ackTimer ??= setTimeout(() => { this.flushReplies() }, this.policy.replies?.ackDelay)
      return
    }
    this.scheduleReplies()
  }

  private scheduleReplies (): void {
    if (this.replyScheduled) return
    this.replyScheduled = true
    queueMicrotask(() => {
      this.replyScheduled = false
      this.flushReplies()
    })
  }

  private flushReplies (): void {
    clearTimeout(this.ackTimer)
    this.ackTimer = undefined
    if (this.ackThrough === 0 && this.replies.length === 0) return
    const frames = this.replies
    // last: after the REJECTs it covers (REPLYs in this write count on their own)
    if (this.ackThrough > 0) frames.push(encodeFrame(FRAME_ACK, this.ackThrough))
    this.replies = []
    this.ackThrough = 0
    this.write(frames)
  }

  private fail (error: MoltSpeakError): void {
    if (this.finished) return
    this.flushReplies()
    this.finished = true
    this.policy.onRefused?.(this.peer, error)
    this.log('closing speak stream from %p: %s', this.peer, error.message)
    this.write([encodeFrame(FRAME_REJECT, 0, errorReply(this.policy.localAgent(), undefined, error))])
    this.stream.close().catch(() => { this.stream.abort(error) })
  }

  private async process (): Promise<void> {
    if (this.processing) return
    this.processing = true
    try {
      while (!this.finished) {
        if (this.writeBlocked) {
          await this.waitForDrain()
          continue
        }
        // synchronous from reading the buffer to this check: data arriving in a gap would find `processing` set and be left unread
        const { handled, storing } = this.nextBatch()
        if (handled === 0) break
        if (storing !== undefined) await storing
        if (handled === MAX_BATCH_FRAMES) await new Promise(resolve => setImmediate(resolve)) // let other streams run
        this.resumeIfBelowHighWater()
      }
      if (this.ended && !this.finished) {
        this.frames.end()
        await this.acks
        this.flushReplies()
        this.finished = true
        await this.stream.close().catch(() => {})
      }
    } catch (err: any) {
      this.fail(err instanceof FrameError
        ? new MoltSpeakError(err.reason === 'oversized' ? 'E_INVALID_PARAM' : 'E_PARSE', err.message)
        : new MoltSpeakError('E_INTERNAL', err.message))
    } finally {
      this.processing = false
    }
  }

  private async waitForDrain (): Promise<void> {
    if (this.stream.readStatus === 'readable') this.stream.pause()
    await this.stream.onDrain()
    this.writeBlocked = false
    this.resumeIfBelowHighWater()
  }

  private resumeIfBelowHighWater (): void {
    if (this.stream.readStatus === 'paused' && !this.writeBlocked && this.frames.bufferedBytes < this.policy.readHighWaterBytes) this.stream.resume()
  }

  /**
   * Check up to MAX_BATCH_FRAMES buffered frames, hand the accepted ones on,
   * queue their ack. Returns the frames handled and, when MAX_BATCHES_STORING
   * batches are being stored, the ack to wait for before reading more.
   */
  private nextBatch (): { handled: number, storing?: Promise<void> } {
    const { policy, peer } = this
    const out: Uint8Array[] = []
    const batch: InboundMessage[] = []
    const batchSeqs: number[] = []
    let frame
    let handled = 0
    let messages = 0
    let requestsOnly = true
    while (handled < MAX_BATCH_FRAMES && (frame = this.frames.next()) != null) {
      handled++
      if (this.replySender !== undefined && (frame.type === FRAME_ACK || frame.type === FRAME_REJECT)) {
        this.replySender.onFrame(frame) // 1.1.0: the requester on our REPLYs
        continue
      }
      const request = frame.type === FRAME_REQUEST && this.replySender !== undefined
      if (frame.type !== FRAME_MESSAGE && !request) throw new FrameError(`unexpected frame type ${frame.type}`, 'malformed')
      if (frame.seq <= this.lastSeq) throw new FrameError(`sequence ${frame.seq} does not increase`, 'malformed')
      this.lastSeq = frame.seq
      messages++
      requestsOnly &&= request
      const checked = frame.oversizedBytes != null
        ? new Refusal(new MoltSpeakError('E_INVALID_PARAM', `message of ${frame.oversizedBytes} bytes exceeds the ${policy.maxMessageBytes} byte limit`), undefined)
        : check(frame.body, peer, this.peerKey, policy)
      if (checked instanceof Refusal) {
        policy.onRefused?.(peer, checked.error)
        out.push(encodeFrame(FRAME_REJECT, frame.seq, errorReply(policy.localAgent(), checked.refused, checked.error)))
      } else if (checked !== DUPLICATE) {
        batch.push({ message: checked.message, json: checked.json, peer, route: this.route })
        batchSeqs.push(frame.seq)
        // before receive() dispatches it: its reply finds this stream
        if (request) policy.replies?.onRequest(this, checked.message.id)
      }
    }
    if (messages === 0) return { handled }
    // storing batch k+1 overlaps with storing batch k; acks still leave in order
    // a batch of REQUESTs only: its ACK is held for a REPLY, so its store may wait to share a write
    // (not the batch after which reading waits for a store: that one starts the write)
    const deferrable = requestsOnly && this.storing + 1 < MAX_BATCHES_STORING
    const stored = batch.length > 0 ? policy.receive(batch, deferrable ? { deferrable } : undefined) : Promise.resolve()
    const ackSeq = this.lastSeq
    const acked = this.acks.then(async () => {
      // not stored: refuse (never ack) so the sender knows to retry
      out.push(...await refusalsIfNotStored(stored, batch, batchSeqs, policy, this.log))
      this.reply(out, ackSeq, requestsOnly)
    })
    this.acks = acked
    const full = ++this.storing >= MAX_BATCHES_STORING
    acked.finally(() => { this.storing-- }).catch(() => {})
    return { handled, storing: full ? acked : undefined }
  }
}
