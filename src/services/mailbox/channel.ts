import type { Logger, Stream } from '@libp2p/interface'
import { EncodedFrame, EncodedRequest, FrameDecoder, writeFrame } from './frames.js'
import { MailboxClosedError, MailboxProtocolError, MailboxRefusedError } from './errors.js'
import * as c from './constants.js'

interface Pending {
  resolve: (frame: Record<string, unknown>) => void
  reject: (err: Error) => void
  timer: ReturnType<typeof setTimeout>
}

/**
 * The client end of one mailbox stream: numbered requests, answers matched
 * by `rid` (they may come out of order: a deposit waits for its fsync while a
 * fetch does not), and `notify` frames of a watch handed to `onNotify`.
 */
export class MailboxChannel {
  private nextRid = 1
  private readonly pending = new Map<number, Pending>()
  private readonly frames = new FrameDecoder(c.MAX_FRAME_BYTES)
  private closedError?: Error
  onNotify?: (pending: number) => void
  onClose?: () => void

  constructor (readonly stream: Stream, private readonly log: Logger, private readonly timeout = c.REQUEST_TIMEOUT) {
    stream.addEventListener('message', (evt) => {
      this.frames.push(evt.data)
      try {
        let frame
        while ((frame = this.frames.next()) !== undefined) this.onFrame(frame)
      } catch (err: any) {
        this.fail(err)
        stream.abort(err)
      }
    })
    stream.addEventListener('close', (evt) => {
      this.fail(evt.error ?? new MailboxClosedError('the relay closed the mailbox stream'))
    })
    stream.addEventListener('remoteCloseWrite', () => {
      this.fail(new MailboxClosedError('the relay ended the mailbox stream'))
      stream.close().catch(() => {})
    })
  }

  get isOpen (): boolean {
    return this.closedError === undefined && this.stream.writeStatus === 'writable'
  }

  /**
   * Send one request and wait for its answer
   *
   * @throws {MailboxRefusedError} the relay answered with an error
   * @throws {MailboxClosedError} the stream closed first
   */
  async request (frame: Record<string, unknown> | EncodedRequest, signal?: AbortSignal): Promise<Record<string, unknown>> {
    if (this.closedError !== undefined) throw this.closedError
    signal?.throwIfAborted()
    const rid = this.nextRid++
    const answer = new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(rid)
        reject(new MailboxClosedError(`no answer to mailbox ${String(frame.t)} within ${this.timeout} ms`))
      }, this.timeout)
      this.pending.set(rid, { resolve, reject, timer })
    })
    // the stream may close (rejecting `answer`) while the write below is still pending: the write's
    // error is thrown then and `answer` is never awaited, which Node would treat as a fatal unhandled rejection
    answer.catch(() => {})
    const onAbort = (): void => { this.settle(rid)?.reject(signal?.reason) }
    signal?.addEventListener('abort', onAbort, { once: true })
    try {
      // the answer has `timeout` to come; the write waits no longer for the stream to drain
      const encoded = frame instanceof EncodedRequest ? new EncodedFrame(`{"rid":${rid},${frame.members}`) : { ...frame, rid }
      await writeFrame(this.stream, encoded, signal ?? AbortSignal.timeout(this.timeout))
      return await answer
    } catch (err) {
      this.settle(rid)
      throw err
    } finally {
      signal?.removeEventListener('abort', onAbort)
    }
  }

  close (): void {
    this.fail(new MailboxClosedError('mailbox channel closed'))
    this.stream.close().catch(() => { this.stream.abort(new MailboxClosedError('closing the mailbox stream failed')) })
  }

  private onFrame (frame: Record<string, unknown>): void {
    if (frame.t === 'notify' && typeof frame.pending === 'number') {
      const waiting = this.settle(frame.rid as number)
      if (waiting !== undefined) waiting.resolve(frame)
      else this.onNotify?.(frame.pending)
      return
    }
    if (frame.t === 'error' && frame.rid === 0) {
      this.fail(new MailboxProtocolError(`the relay closed the stream: ${String(frame.message)}`))
      return
    }
    const waiting = this.settle(frame.rid as number)
    if (waiting === undefined) {
      this.log('mailbox answer for unknown request %s', frame.rid)
      return
    }
    if (frame.t === 'error') {
      waiting.reject(new MailboxRefusedError(String(frame.message), frame.code as any, frame.reason as any, typeof frame.retryAfter === 'number' ? frame.retryAfter : undefined))
    } else {
      waiting.resolve(frame)
    }
  }

  private settle (rid: number): Pending | undefined {
    const waiting = this.pending.get(rid)
    if (waiting === undefined) return undefined
    clearTimeout(waiting.timer)
    this.pending.delete(rid)
    return waiting
  }

  private fail (err: Error): void {
    if (this.closedError !== undefined) return
    this.closedError = err
    for (const [rid, waiting] of this.pending) {
      clearTimeout(waiting.timer)
      this.pending.delete(rid)
      waiting.reject(err)
    }
    this.onClose?.()
  }
}
