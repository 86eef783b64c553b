import { encodeFrame, FrameDecoder, FRAME_MESSAGE, FRAME_REJECT, type Frame } from '../../src/services/speak/frames.js'
import { SPEAK_PROTOCOL, type MoltNode } from '../../src/index.js'

export { encodeFrame, FRAME_MESSAGE, FRAME_REJECT }

/**
 * A hand-driven /molt/speak stream from `from` to `to`: write any bytes,
 * collect every frame the receiver sends back, see whether it closed.
 */
export async function rawSpeak (from: MoltNode, to: MoltNode): Promise<RawSpeakStream> {
  const stream = await from.libp2p.dialProtocol(to.peerId, SPEAK_PROTOCOL)
  const raw = new RawSpeakStream(stream)
  open.add(raw)
  return raw
}

const open = new Set<RawSpeakStream>()

/** Close every raw stream opened so far (receivers cap streams per connection) */
export async function closeRawStreams (): Promise<void> {
  await Promise.all([...open].map(async raw => raw.stream.close().catch(() => raw.stream.abort(new Error('test over')))))
  open.clear()
}

export class RawSpeakStream {
  readonly frames: Frame[] = []
  /** The receiver closed its end (or the stream closed) */
  closed = false
  /** No frame can arrive any more: the stream's 'end' or 'close' */
  ended = false
  private readonly decoder = new FrameDecoder(2 * 1024 * 1024)
  private readonly waiters = new Set<() => void>()

  constructor (readonly stream: any) {
    stream.addEventListener('message', (evt: any) => {
      this.decoder.push(evt.data)
      for (let f = this.decoder.next(); f != null; f = this.decoder.next()) this.frames.push(f)
      this.wake()
    })
    stream.addEventListener('remoteCloseWrite', () => { this.closed = true; this.wake() })
    // 'end' comes once the read buffer is empty and the remote closed: every frame has been seen
    const onEnd = (): void => { this.closed = true; this.ended = true; this.wake() }
    stream.addEventListener('end', onEnd)
    stream.addEventListener('close', onEnd)
  }

  send (bytes: Uint8Array): void {
    this.stream.send(bytes)
  }

  message (seq: number, json: unknown): void {
    const body = typeof json === 'string' ? json : JSON.stringify(json)
    this.send(encodeFrame(FRAME_MESSAGE, seq, new TextEncoder().encode(body)))
  }

  /**
   * Wait until `predicate` holds over the frames received so far. It is
   * checked on each frame and when the stream closes, never on a clock: a
   * stream that ended without it fails at once, naming what arrived; one
   * that stays open waits for `signal` (or the test's own timeout).
   */
  async until (predicate: (frames: Frame[], closed: boolean) => boolean, options: { signal?: AbortSignal } = {}): Promise<Frame[]> {
    return new Promise<Frame[]>((resolve, reject) => {
      const { signal } = options
      const check = (): void => {
        if (predicate(this.frames, this.closed)) {
          done()
          resolve(this.frames)
        } else if (this.ended || signal?.aborted === true) {
          done()
          reject(new Error(`${this.ended ? 'the stream ended' : 'aborted'} before the frames expected; frames: ${JSON.stringify(this.frames.map(describe))} closed=${this.closed}`))
        }
      }
      const done = (): void => {
        this.waiters.delete(check)
        signal?.removeEventListener('abort', check)
      }
      this.waiters.add(check)
      signal?.addEventListener('abort', check)
      check()
    })
  }

  /** The error reply of a REJECT frame */
  static rejection (frame: Frame): any {
    return JSON.parse(new TextDecoder().decode(frame.body))
  }

  private wake (): void {
    for (const check of [...this.waiters]) check()
  }
}

function describe (f: Frame): unknown {
  return { type: f.type, seq: f.seq, body: new TextDecoder().decode(f.body).slice(0, 200) }
}
