import { describe, it, expect } from 'vitest'
import { encodeFrame, FrameDecoder, FRAME_MESSAGE, FRAME_ACK } from '../../src/services/speak/frames.js'
import { ReplayWindow } from '../../src/moltspeak/replay-window.js'

describe('speak frames', () => {
  it('round-trips frames split at every byte boundary', () => {
    const frames = [encodeFrame(FRAME_MESSAGE, 1, new TextEncoder().encode('{"a":1}')), encodeFrame(FRAME_ACK, 300), encodeFrame(FRAME_MESSAGE, 2 ** 31, new Uint8Array(200).fill(7))]
    const bytes = Buffer.concat(frames)
    for (let split = 1; split < bytes.length; split++) {
      const decoder = new FrameDecoder(1024)
      const out = []
      decoder.push(bytes.subarray(0, split))
      for (let f = decoder.next(); f != null; f = decoder.next()) out.push(f)
      decoder.push(bytes.subarray(split))
      for (let f = decoder.next(); f != null; f = decoder.next()) out.push(f)
      expect(out.map(f => [f.type, f.seq, f.body.length])).toEqual([[1, 1, 7], [2, 300, 0], [1, 2 ** 31, 200]])
      decoder.end()
    }
  })

  it('skips an oversized frame without buffering it and keeps decoding', () => {
    const decoder = new FrameDecoder(100, 10_000)
    const big = encodeFrame(FRAME_MESSAGE, 9, new Uint8Array(5000))
    decoder.push(big.subarray(0, 50))
    const skipped = decoder.next()
    expect(skipped).toMatchObject({ seq: 9, oversizedBytes: big.length - 2 })
    expect(decoder.bufferedBytes).toBe(0)
    decoder.push(big.subarray(50))
    decoder.push(encodeFrame(FRAME_ACK, 10))
    expect(decoder.next()).toMatchObject({ type: FRAME_ACK, seq: 10 })
  })

  it('throws on frames it cannot skip or parse, and on a truncated end', () => {
    const huge = new FrameDecoder(100, 1000)
    huge.push(Uint8Array.from([0x80, 0x80, 0x01]))
    expect(() => huge.next()).toThrow(expect.objectContaining({ reason: 'oversized' }))
    const short = new FrameDecoder(100)
    short.push(Uint8Array.from([0x01, 0x01]))
    expect(() => short.next()).toThrow(expect.objectContaining({ reason: 'malformed' }))
    const cut = new FrameDecoder(100)
    cut.push(encodeFrame(FRAME_MESSAGE, 1, new Uint8Array(10)).subarray(0, 5))
    expect(cut.next()).toBeUndefined()
    expect(() => cut.end()).toThrow(expect.objectContaining({ reason: 'truncated' }))
  })
})

describe('replay window', () => {
  it('recognises a repeat within the window and forgets it after', () => {
    const window = new ReplayWindow(1000, 10)
    expect(window.checkAndRemember('a', 0, 0)).toBe(false)
    expect(window.checkAndRemember('a', 0, 999)).toBe(true)
    expect(window.checkAndRemember('a', 0, 1001)).toBe(false)
  })

  it('is bounded: past the cap the oldest ids are forgotten first', () => {
    const window = new ReplayWindow(60_000, 4)
    for (const id of ['a', 'b', 'c', 'd', 'e']) window.checkAndRemember(id, 0, 0)
    expect(window.size).toBeLessThanOrEqual(4)
    expect(window.checkAndRemember('e', 0, 1)).toBe(true)
    expect(window.checkAndRemember('d', 0, 1)).toBe(true)
    expect(window.checkAndRemember('a', 0, 1)).toBe(false)
    for (let i = 0; i < 10_000; i++) window.checkAndRemember(`x${i}`, 0, 2)
    expect(window.size).toBeLessThanOrEqual(4)
  })
})
