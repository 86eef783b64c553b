import { describe, it, expect } from 'vitest'
import { RawSpeakStream, encodeFrame, FRAME_MESSAGE } from '../support/raw-speak.js'
import { FRAME_ACK } from '../../src/services/speak/frames.js'

/** The events RawSpeakStream listens to, dispatched by the test */
function fakeStream (): EventTarget & { fire: (type: string, data?: Uint8Array) => void } {
  const target = new EventTarget()
  return Object.assign(target, {
    fire: (type: string, data?: Uint8Array) => {
      target.dispatchEvent(Object.assign(new Event(type), data !== undefined ? { data } : {}))
    }
  })
}

const ack = (seq: number): Uint8Array => encodeFrame(FRAME_ACK, seq, new Uint8Array(0))

describe('test support: RawSpeakStream.until', () => {
  it('resolves on the frame that makes the predicate hold, and not before', async () => {
    const stream = fakeStream()
    const raw = new RawSpeakStream(stream)
    let resolved = false
    const waiting = raw.until(f => f.some(x => x.type === FRAME_ACK && x.seq === 2)).then((frames) => { resolved = true; return frames })
    stream.fire('message', ack(1))
    await Promise.resolve()
    expect(resolved).toBe(false)
    stream.fire('message', ack(2))
    expect((await waiting).map(f => f.seq)).toEqual([1, 2])
  })

  it('fails at once when the stream ends without the expected frame, naming what arrived', async () => {
    const stream = fakeStream()
    const raw = new RawSpeakStream(stream)
    const waiting = raw.until(f => f.some(x => x.seq === 9))
    stream.fire('message', encodeFrame(FRAME_MESSAGE, 1, new TextEncoder().encode('{"op":"x"}')))
    stream.fire('end')
    await expect(waiting).rejects.toThrow(/the stream ended before the frames expected; frames: .*"seq":1.*closed=true/)
    // a predicate over a closed stream still holds once it ended
    expect((await raw.until((_, closed) => closed)).length).toBe(1)
  })

  it('a remote close for writing sets `closed` without ending the wait: only the stream\'s end does', async () => {
    const stream = fakeStream()
    const raw = new RawSpeakStream(stream)
    stream.fire('remoteCloseWrite')
    const waiting = raw.until((f, closed) => closed && f.length === 1)
    stream.fire('message', ack(1))
    expect(await waiting).toHaveLength(1)
  })

  it('gives up when its signal aborts', async () => {
    const raw = new RawSpeakStream(fakeStream())
    const controller = new AbortController()
    const waiting = raw.until(f => f.length > 0, { signal: controller.signal })
    controller.abort()
    await expect(waiting).rejects.toThrow(/aborted before the frames expected/)
  })
})
