import { describe, it, expect } from 'vitest'
import { FrameDecoder, encodeFrame } from '../../src/services/mailbox/frames.js'
import { MAX_FRAME_BYTES } from '../../src/services/mailbox/constants.js'

const enc = new TextEncoder()

/** Every frame `decoder` has whole, or the error that ended it */
function drain (decoder: FrameDecoder): { frames: unknown[], error?: Error } {
  const frames: unknown[] = []
  try {
    for (let f = decoder.next(); f !== undefined; f = decoder.next()) frames.push(f)
  } catch (err: any) {
    return { frames, error: err }
  }
  return { frames }
}

describe('mailbox FrameDecoder (LengthPrefixedDecoder with molt limits)', () => {
  it('decodes frames split at every byte boundary, and reports each body size', () => {
    const bytes = Buffer.concat([encodeFrame({ t: 'fetch', rid: 1 }), encodeFrame({ t: 'watch', rid: 2, pad: 'x'.repeat(300) })])
    for (let split = 1; split < bytes.length; split++) {
      const decoder = new FrameDecoder(MAX_FRAME_BYTES)
      decoder.push(bytes.subarray(0, split))
      const first = drain(decoder).frames
      decoder.push(bytes.subarray(split))
      const frames = [...first, ...drain(decoder).frames]
      expect(frames).toEqual([{ t: 'fetch', rid: 1 }, { t: 'watch', rid: 2, pad: 'x'.repeat(300) }])
    }
    const decoder = new FrameDecoder(MAX_FRAME_BYTES)
    decoder.push(encodeFrame({ t: 'fetch', rid: 1 }))
    decoder.next()
    expect(decoder.frameBytes).toBe(JSON.stringify({ t: 'fetch', rid: 1 }).length)
  })

  it('keeps the frames it took out when the caller stops early, and hands them out in order', () => {
    const decoder = new FrameDecoder(MAX_FRAME_BYTES)
    decoder.push(Buffer.concat([1, 2, 3].map(rid => encodeFrame({ rid }))))
    expect(decoder.next()).toEqual({ rid: 1 })
    // more data while two whole frames still wait (a paused relay stream)
    decoder.push(encodeFrame({ rid: 4 }))
    expect(drain(decoder).frames).toEqual([{ rid: 2 }, { rid: 3 }, { rid: 4 }])
  })

  it('refuses an oversized length from the prefix alone, before the body arrives', () => {
    const decoder = new FrameDecoder(1000)
    decoder.push(Uint8Array.of(0xe9, 0x07)) // 1001
    expect(drain(decoder).error).toMatchObject({ name: 'MailboxProtocolError', message: expect.stringMatching(/1000 byte limit/) })
    // a prefix that never ends is refused at the byte past the longest the limit needs (2 bytes for 1000)
    const endless = new FrameDecoder(1000)
    endless.push(Uint8Array.of(0x80, 0x80, 0x80))
    expect(drain(endless).error).toMatchObject({ name: 'MailboxProtocolError' })
  })

  it('refuses a padded prefix and an empty frame (LengthPrefixedDecoder would misplace or skip them)', () => {
    const body = enc.encode('{"rid":1}')
    const padded = new FrameDecoder(MAX_FRAME_BYTES)
    padded.push(Uint8Array.from([body.length | 0x80, 0x00, ...body]))
    expect(drain(padded).error).toMatchObject({ name: 'MailboxProtocolError', message: expect.stringMatching(/padded/) })
    const empty = new FrameDecoder(MAX_FRAME_BYTES)
    empty.push(Uint8Array.of(0x00))
    expect(drain(empty).error).toMatchObject({ name: 'MailboxProtocolError', message: expect.stringMatching(/empty/) })
  })

  it('hands out the whole frames before a bad one, then throws', () => {
    const decoder = new FrameDecoder(MAX_FRAME_BYTES)
    const notAnObject = enc.encode('[1]')
    decoder.push(Buffer.concat([encodeFrame({ rid: 1 }), Uint8Array.of(notAnObject.length), notAnObject, encodeFrame({ rid: 3 })]))
    const { frames, error } = drain(decoder)
    expect(frames).toEqual([{ rid: 1 }])
    expect(error).toMatchObject({ name: 'MailboxProtocolError', message: 'frame is not a JSON object' })
    const deep = new FrameDecoder(MAX_FRAME_BYTES)
    const text = enc.encode('['.repeat(100) + ']'.repeat(100))
    deep.push(Buffer.concat([encodeFrame({ rid: 1 }), Uint8Array.of(text.length | 0x80, text.length >> 7), text]))
    const result = drain(deep)
    expect(result.frames).toEqual([{ rid: 1 }])
    expect(result.error?.message).toMatch(/nests deeper than 64/)
  })
})
