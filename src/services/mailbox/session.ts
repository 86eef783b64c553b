import type { Connection, Logger, Stream } from '@libp2p/interface'
import { FrameDecoder, encodeFrame, type EncodedFrame } from './frames.js'
import { MailboxProtocolError, MailboxRefusedError, MailboxStalledError } from './errors.js'
import * as c from './constants.js'

/** Answers `request` gives: one object per request frame (or its JSON text, written already), without the framing */
export type Answer = Record<string, unknown> | EncodedFrame

/**
 * What a session needs from the server: the request handler (throws
 * MailboxRefusedError for a refusal) and the watcher registry. `watch`
 * subscribes this stream to its peer's deposits and returns `pending`.
 */
export interface SessionContext {
  log: Logger
  request: (frame: Record<string, unknown>, watch: (pending: number) => number) => Promise<Answer>
  watchers: Watchers
  load: ConnectionLoad
}

/** `notify` callbacks of the streams watching each recipient */
export class Watchers {
  private readonly byKey = new Map<string, Set<(pending: number) => void>>()

  get size (): number {
    let n = 0
    for (const set of this.byKey.values()) n += set.size
    return n
  }

  add (key: string, notify: (pending: number) => void): void {
    let set = this.byKey.get(key)
    if (set === undefined) this.byKey.set(key, set = new Set())
    set.add(notify)
  }

  delete (key: string, notify: (pending: number) => void): void {
    const set = this.byKey.get(key)
    set?.delete(notify)
    if (set?.size === 0) this.byKey.delete(key)
  }

  notify (key: string, pending: number): void {
    for (const notify of this.byKey.get(key) ?? []) notify(pending)
  }

  clear (): void {
    this.byKey.clear()
  }
}

/** Request bytes in processing on one connection's mailbox streams, and how to wake the streams paused for it */
export class ConnectionLoad {
  bytes = 0
  readonly streams = new Set<() => void>()

  /** A request finished: every stream paused for this connection may read again */
  release (bytes: number): void {
    this.bytes -= bytes
    for (const wake of this.streams) wake()
  }
}

/**
 * One inbound mailbox stream on the relay. Frames are read as they arrive
 * and handled concurrently (a fetch need not wait for a deposit's fsync);
 * answers are written in the order they finish, one at a time.
 *
 * Backpressure: a request counts until its answer is written, so a client
 * that never reads its answers stops being read after 32 of them
 * (hostile.test.ts) instead of making the relay queue every answer
 * (megabytes each for a fetch). The connection's request bytes are capped the
 * same way across its streams (MAX_CONNECTION_PENDING_BYTES).
 */
export class MailboxSession {
  private readonly frames = new FrameDecoder(c.MAX_FRAME_BYTES)
  private readonly peerKey: string
  /** Answers are written one after another: each waits for the one before */
  private writes: Promise<void> = Promise.resolve()
  private inFlight = 0
  private broken = false
  private watching?: (pending: number) => void

  /** Serve `stream` until it closes (the session lives on in the stream's listeners) */
  static open (stream: Stream, connection: Connection, ctx: SessionContext): void {
    const session = new MailboxSession(stream, connection, ctx)
    session.listen()
  }

  private constructor (private readonly stream: Stream, private readonly connection: Connection, private readonly ctx: SessionContext) {
    this.peerKey = connection.remotePeer.toString()
  }

  private listen (): void {
    const { stream, ctx } = this
    stream.inactivityTimeout = c.STREAM_IDLE_TIMEOUT
    ctx.load.streams.add(this.wake)
    stream.addEventListener('message', (evt) => {
      if (this.broken) return
      this.frames.push(evt.data)
      this.pump()
    })
    stream.addEventListener('remoteCloseWrite', () => { this.closeAfterAnswers() })
    stream.addEventListener('close', () => {
      this.stopWatching()
      ctx.load.streams.delete(this.wake)
    })
  }

  /** Too much pending on this stream (32 requests) or on the whole connection */
  private overloaded (): boolean {
    return this.inFlight > 4 * c.MAX_INBOUND_STREAMS || this.ctx.load.bytes >= c.MAX_CONNECTION_PENDING_BYTES
  }

  /** Handle the whole frames buffered so far; over a cap, stop reading until `wake` */
  private pump (): void {
    if (this.broken) return
    try {
      while (!this.overloaded()) {
        const frame = this.frames.next()
        if (frame === undefined) return
        this.handle(frame, this.frames.frameBytes)
      }
      if (this.stream.readStatus === 'readable') this.stream.pause()
    } catch (err: any) {
      this.fail(err)
    }
  }

  /** Read again once well under the caps (half of them: no flapping at the edge) */
  private readonly wake = (): void => {
    if (this.inFlight > 2 * c.MAX_INBOUND_STREAMS || this.ctx.load.bytes >= c.MAX_CONNECTION_PENDING_BYTES) return
    // frames already buffered first: the decoder then holds at most a partial frame when the next chunk comes
    this.pump()
    if (!this.overloaded() && this.stream.readStatus === 'paused') this.stream.resume()
  }

  private handle (frame: Record<string, unknown>, bytes: number): void {
    const rid = frame.rid
    if (!Number.isSafeInteger(rid) || (rid as number) <= 0) throw new MailboxProtocolError('rid must be a positive integer')
    this.inFlight++
    this.ctx.load.bytes += bytes
    this.respond(frame, rid as number).finally(() => {
      this.inFlight--
      this.ctx.load.release(bytes)
    }).catch(() => {})
  }

  /** Handle one request and write its answer (an `error` answer for a refusal) */
  private async respond (frame: Record<string, unknown>, rid: number): Promise<void> {
    let answer: Answer
    try {
      answer = await this.ctx.request(frame, (pending) => this.watch(rid, pending))
    } catch (err: any) {
      answer = this.errorAnswer(rid, err)
    }
    await this.answer(answer)
  }

  private errorAnswer (rid: number, err: Error): Answer {
    if (err instanceof MailboxRefusedError) {
      return { t: 'error', rid, code: err.code, reason: err.reason, message: err.message, ...(err.retryAfter != null ? { retryAfter: err.retryAfter } : {}) }
    }
    this.ctx.log.error('mailbox request from %p failed - %e', this.connection.remotePeer, err)
    return { t: 'error', rid, code: 'E_INTERNAL', reason: 'storage-error', message: 'the relay failed to handle the request' }
  }

  /** Queue `answer` behind the ones before it; resolves once written, or once writing failed (logged) */
  private async answer (answer: Answer): Promise<void> {
    this.writes = this.writes.then(async () => { await this.write(answer) }).catch((err) => {
      this.ctx.log('could not answer %p - %e', this.connection.remotePeer, err)
    })
    return this.writes
  }

  private async write (answer: Answer): Promise<void> {
    if (this.stream.writeStatus !== 'writable') throw new MailboxProtocolError(`stream is ${this.stream.writeStatus}`)
    if (this.stream.send(encodeFrame(answer))) return
    // a client that reads nothing for as long as an idle stream may last is cut off
    const signal = AbortSignal.timeout(c.STREAM_IDLE_TIMEOUT)
    try {
      await this.stream.onDrain({ signal })
    } catch (err) {
      if (!signal.aborted) throw err
      const stalled = new MailboxStalledError(`${this.peerKey} read no answer for ${c.STREAM_IDLE_TIMEOUT} ms`)
      this.stream.abort(stalled)
      throw stalled
    }
  }

  /** Subscribe this stream to deposits for its peer: one `notify` per tick, none while one is unwritten */
  private watch (rid: number, pending: number): number {
    if (this.watching !== undefined) return pending
    let scheduled = false
    this.watching = (count) => {
      // however many deposits land in a tick, and a watcher that never reads costs one queued frame
      if (scheduled) return
      scheduled = true
      queueMicrotask(() => {
        this.answer({ t: 'notify', rid, pending: count }).finally(() => { scheduled = false }).catch(() => {})
      })
    }
    this.ctx.watchers.add(this.peerKey, this.watching)
    return pending
  }

  private stopWatching (): void {
    if (this.watching === undefined) return
    this.ctx.watchers.delete(this.peerKey, this.watching)
    this.watching = undefined
  }

  /** A frame that breaks the stream: answer `error` rid 0, then close */
  private fail (err: Error): void {
    this.broken = true
    this.ctx.log('closing mailbox stream from %p: %s', this.connection.remotePeer, err.message)
    this.stopWatching()
    this.answer({ t: 'error', rid: 0, code: 'E_PARSE', reason: 'malformed', message: err.message }).catch(() => {})
    this.closeAfterAnswers(err)
  }

  /** Close our side once every queued answer is written; abort with `err` if closing fails */
  private closeAfterAnswers (err?: Error): void {
    this.writes.finally(() => {
      this.stream.close().catch(() => { if (err !== undefined) this.stream.abort(err) })
    }).catch(() => {})
  }
}
