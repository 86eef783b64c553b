import { describe, it, expect } from 'vitest'
import { assertJsonDepth, parseBoundedJson, JsonTooDeepError, JsonSyntaxError, MAX_JSON_DEPTH } from '../../src/json/index.js'

/** Reference depth of a parsed value: the outermost container is 1 */
function depthOf (value: unknown): number {
  if (typeof value !== 'object' || value === null) return 0
  let max = 0
  for (const item of Object.values(value)) max = Math.max(max, depthOf(item))
  return max + 1
}

function nested (depth: number, open = '[', close = ']'): string {
  return open.repeat(depth) + close.repeat(depth)
}

const both = (text: string): Array<Uint8Array | string> => [text, new TextEncoder().encode(text)]

describe('bounded JSON', () => {
  it('accepts exactly the limit and refuses one level more, as bytes and as text', () => {
    for (const input of both(nested(MAX_JSON_DEPTH))) expect(() => assertJsonDepth(input)).not.toThrow()
    for (const input of both(nested(MAX_JSON_DEPTH + 1))) {
      expect(() => assertJsonDepth(input)).toThrow(JsonTooDeepError)
    }
    expect(() => assertJsonDepth('{"a":{"b":[{}]}}', 3)).toThrow(expect.objectContaining({ limit: 3, offset: 11 }))
    expect(() => assertJsonDepth('{"a":{"b":[{}]}}', 4)).not.toThrow()
  })

  it('counts brackets only outside strings, across escapes and multi-byte characters', () => {
    const cases = [
      '{"k":"[[[[[[[[[[[[["}',
      '["\\"[[[[[[[[[[["]',
      '["\\\\",[["x"]]]',
      '["\\\\\\"[[[[[[[[[[[[[",1]',
      '{"é[[[[[[[[[":"ü{{{{{{{{{{","\\u005b[[[[[[[[[":[]}',
      '[{"a":[{"b":"]]]]]]]]]]]"}]},[[["}"]]]]'
    ]
    for (const text of cases) {
      const depth = depthOf(JSON.parse(text))
      for (const input of both(text)) {
        expect(() => assertJsonDepth(input, depth), text).not.toThrow()
        expect(() => assertJsonDepth(input, depth - 1), text).toThrow(JsonTooDeepError)
      }
    }
  })

  it('agrees with the parsed depth on random documents', () => {
    let seed = 7
    const rand = (n: number): number => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed % n }
    const pieces = ['"', '\\', '[', ']', '{', '}', 'a', 'é']
    const build = (d: number): unknown => {
      if (d === 0 || rand(4) === 0) return Array.from({ length: rand(6) }, () => pieces[rand(pieces.length)]).join('')
      return rand(2) === 0 ? Array.from({ length: rand(3) + 1 }, () => build(d - 1)) : { [String(rand(100)) + pieces[rand(8)]]: build(d - 1) }
    }
    for (let run = 0; run < 500; run++) {
      const text = JSON.stringify(build(12))
      const depth = depthOf(JSON.parse(text))
      for (const input of both(text)) {
        expect(() => assertJsonDepth(input, depth)).not.toThrow()
        if (depth > 0) expect(() => assertJsonDepth(input, depth - 1)).toThrow(JsonTooDeepError)
      }
    }
  })

  it('stops a megabyte of brackets at the limit, before JSON.parse sees it', () => {
    const deep = new Uint8Array(1 << 20).fill(0x5b)
    expect(() => parseBoundedJson(deep)).toThrow(expect.objectContaining({ name: 'JsonTooDeepError', offset: MAX_JSON_DEPTH }))
  })

  it('parses what passes and names what is not UTF-8 JSON', () => {
    expect(parseBoundedJson(new TextEncoder().encode('{"a":[1,{"b":"c"}]}'))).toEqual({ a: [1, { b: 'c' }] })
    expect(parseBoundedJson('[1]')).toEqual([1])
    expect(() => parseBoundedJson(Uint8Array.from([0x5b, 0xff, 0x5d]))).toThrow(JsonSyntaxError)
    expect(() => parseBoundedJson('{"a":')).toThrow(JsonSyntaxError)
    expect(() => parseBoundedJson('"unterminated [[[[')).toThrow(JsonSyntaxError)
  })
})
