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
  closed = false
  private readonly decoder = new FrameDecoder(2 * 1024 * 1024)
  private waiters: Array<() => void> = []

  constructor (readonly stream: any) {
    stream.addEventListener('message', (evt: any) => {
      this.decoder.push(evt.data)
      for (let f = this.decoder.next(); f != null; f = this.decoder.next()) this.frames.push(f)
      this.wake()
    })
    const onEnd = (): void => { this.closed = true; this.wake() }
    stream.addEventListener('remoteCloseWrite', onEnd)
    stream.addEventListener('close', onEnd)
  }

  send (bytes: Uint8Array): void {
    this.stream.send(bytes)
  }

  message (seq: number, json: unknown): void {
    const body = typeof json === 'string' ? json : JSON.stringify(json)
    this.send(encodeFrame(FRAME_MESSAGE, seq, new TextEncoder().encode(body)))
  }

  /** Wait until `predicate` holds over the frames received so far */
  async until (predicate: (frames: Frame[], closed: boolean) => boolean, timeout = 5000): Promise<Frame[]> {
    const deadline = Date.now() + timeout
    while (!predicate(this.frames, this.closed)) {
      if (Date.now() > deadline) throw new Error(`timed out; frames so far: ${JSON.stringify(this.frames.map(describe))} closed=${this.closed}`)
      await new Promise<void>(resolve => {
        this.waiters.push(resolve)
        setTimeout(resolve, 50)
      })
    }
    return this.frames
  }

  /** The error reply of a REJECT frame */
  static rejection (frame: Frame): any {
    return JSON.parse(new TextDecoder().decode(frame.body))
  }

  private wake (): void {
    for (const w of this.waiters.splice(0)) w()
  }
}

function describe (f: Frame): unknown {
  return { type: f.type, seq: f.seq, body: new TextDecoder().decode(f.body).slice(0, 200) }
}
