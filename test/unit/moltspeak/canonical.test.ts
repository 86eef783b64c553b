import { describe, it, expect } from 'vitest'
import { canonicalize, CanonicalizationError, pythonFloatRepr, utf8Length } from '../../../src/moltspeak/index.js'

// expected strings below are Python's json.dumps(v, sort_keys=True, separators=(',', ':'))

describe('canonicalize', () => {
  it('sorts keys recursively, keeps array order, writes no whitespace', () => {
    const value = { z: { y: [3, 1, { b: 1, a: 2 }], x: null }, n: [true, false, null, -0, 1703280000000], a: 'x' }
    expect(canonicalize(value)).toBe('{"a":"x","n":[true,false,null,0,1703280000000],"z":{"x":null,"y":[3,1,{"a":2,"b":1}]}}')
  })

  it('escapes non-ASCII like Python ensure_ascii (lower-case hex)', () => {
    expect(canonicalize('Привет')).toBe('"\\u041f\\u0440\\u0438\\u0432\\u0435\\u0442"')
    expect(canonicalize('漢字')).toBe('"\\u6f22\\u5b57"')
    expect(canonicalize('é')).toBe('"\\u00e9"')
    expect(canonicalize('\u00ff\u0100\uffff')).toBe('"\\u00ff\\u0100\\uffff"')
  })

  it('writes astral characters as lower-case surrogate pairs', () => {
    expect(canonicalize('😀')).toBe('"\\ud83d\\ude00"')
    expect(canonicalize('a😀b')).toBe('"a\\ud83d\\ude00b"')
    // lone surrogates are escaped one by one, as Python does
    expect(canonicalize('\ud800x\udfff')).toBe('"\\ud800x\\udfff"')
  })

  it('escapes control characters, DEL, quotes and backslash, but not /', () => {
    expect(canonicalize('\u0000\u0001\u001f\u007f\n\r\t\b\f')).toBe('"\\u0000\\u0001\\u001f\\u007f\\n\\r\\t\\b\\f"')
    expect(canonicalize('"\\/')).toBe('"\\"\\\\/"')
    expect(canonicalize('https://example.com/a?b=c&d=<e>')).toBe('"https://example.com/a?b=c&d=<e>"')
  })

  it('escapes keys the same way and sorts them by code point like Python', () => {
    // UTF-16 order would put the emoji (0xd83d) before U+E000
    const value = { '😀': 2, '\ue000': 1, b: 0, 'é': 3, 'Привет': 4 }
    expect(canonicalize(value)).toBe('{"b":0,"\\u00e9":3,"\\u041f\\u0440\\u0438\\u0432\\u0435\\u0442":4,"\\ue000":1,"\\ud83d\\ude00":2}')
  })

  it('escapes long strings (the regex fast path) the same as short ones', () => {
    const plain = 'x'.repeat(40)
    expect(canonicalize(plain)).toBe('"' + plain + '"')
    expect(canonicalize(plain + 'é' + plain)).toBe('"' + plain + '\\u00e9' + plain + '"')
    expect(canonicalize('"' + plain + '\n')).toBe('"\\"' + plain + '\\n"')
    expect(canonicalize('short "q"')).toBe('"short \\"q\\""')
  })

  it('sorts objects with many keys (the Array#sort path) by code point', () => {
    const value: Record<string, number> = { '😀': -1, '\uffff': -2 }
    for (let i = 0; i < 30; i++) value['k' + String(i).padStart(2, '0')] = i
    const expected = '{' + Array.from({ length: 30 }, (_, i) => `"k${String(i).padStart(2, '0')}":${i}`).join(',') + ',"\\uffff":-2,"\\ud83d\\ude00":-1}'
    expect(canonicalize(value)).toBe(expected)
    const ascii: Record<string, number> = {}
    for (const k of ['z', 'b', 'y', 'a', 'q', 'Z', 'A', '_', '-', '0', 'aa', 'a0', 'ab', 'ba', 'zz', 'm', 'n', 'o']) ascii[k] = 1
    expect(canonicalize(ascii)).toBe('{' + Object.keys(ascii).sort().map(k => `"${k}":1`).join(',') + '}')
    expect(canonicalize({ b: 1, a: 2, '0': 3, '-': 4 })).toBe('{"-":4,"0":3,"a":2,"b":1}')
  })

  it('matches a mixed Python vector', () => {
    const value = { b: 'Привет', a: '漢字', c: '😀', d: '\x00\x01\x1f\x7f\n\r\t\b\f', e: '"\\/', '\ue000': 1, '😀': 2 }
    expect(canonicalize(value)).toBe('{"a":"\\u6f22\\u5b57","b":"\\u041f\\u0440\\u0438\\u0432\\u0435\\u0442","c":"\\ud83d\\ude00","d":"\\u0000\\u0001\\u001f\\u007f\\n\\r\\t\\b\\f","e":"\\"\\\\/","\\ue000":1,"\\ud83d\\ude00":2}')
  })

  it('writes integers below 1e21 as digits, as JSON.stringify puts them on the wire (Python reads them as ints)', () => {
    expect(canonicalize([0, -0, -1, 9007199254740993, 1e16, 1e20, 100])).toBe('[0,0,-1,9007199254740992,10000000000000000,100000000000000000000,100]')
  })

  // issue #16: JavaScript wrote 0.00005 and 1e-7 where Python writes 5e-05 and 1e-07, so Python could not verify
  it('writes every other number as Python repr(float)', () => {
    const values = [0.00005, 1e-7, 1e21, 0.1, 1.5, -2.25, 0.0001, 123456789012345.6, 1.5e300, 5e-324, 1.7976931348623157e308, 0.1 + 0.2, -1e-5]
    // /usr/bin/python3 -c "import json; print(json.dumps([...], separators=(',',':')))"
    expect(canonicalize(values)).toBe('[5e-05,1e-07,1e+21,0.1,1.5,-2.25,0.0001,123456789012345.6,1.5e+300,5e-324,1.7976931348623157e+308,0.30000000000000004,-1e-05]')
  })

  it('pythonFloatRepr keeps the float form of integral values (100.0, 1e+16, -0.0)', () => {
    expect([100, 1e15, 1e16, 1.5e16, -0, 0, 1e21].map(pythonFloatRepr)).toEqual(['100.0', '1000000000000000.0', '1e+16', '1.5e+16', '-0.0', '0.0', '1e+21'])
  })

  // issue #16: a lone surrogate sorted after U+E000 (treated as half of an astral pair); Python orders by code point
  it('sorts a lone surrogate key by its own code point, before U+E000 and astral characters', () => {
    expect(canonicalize({ '\ue000': 2, '😀': 3, a: 0, '\ud800': 1 })).toBe('{"a":0,"\\ud800":1,"\\ue000":2,"\\ud83d\\ude00":3}')
    expect(canonicalize({ '\udc00x': 2, '\ud800': 1, '\ud83d\ude00': 3, '\ud83d': 0 })).toBe('{"\\ud800":1,"\\ud83d":0,"\\udc00x":2,"\\ud83d\\ude00":3}')
  })

  it('omits undefined members, writes undefined array items as null, honours toJSON', () => {
    expect(canonicalize({ a: undefined, b: 1, c: undefined })).toBe('{"b":1}')
    expect(canonicalize({ a: undefined })).toBe('{}')
    expect(canonicalize([undefined, 1])).toBe('[null,1]')
    expect(canonicalize({ d: new Date(0) })).toBe('{"d":"1970-01-01T00:00:00.000Z"}')
  })

  it('handles empty containers and repeated (non-cyclic) references', () => {
    const shared = { x: 1 }
    expect(canonicalize({ a: {}, b: [], c: shared, d: [shared] })).toBe('{"a":{},"b":[],"c":{"x":1},"d":[{"x":1}]}')
  })

  it('agrees with JSON.stringify on sorted ASCII input', () => {
    const value = { a: [1, 'two', { three: 3 }], b: { c: 'd e', f: null }, g: true }
    expect(canonicalize(value)).toBe(JSON.stringify(value))
  })

  it.each([
    ['NaN', NaN],
    ['Infinity', { a: Infinity }],
    ['a function', { a: () => 1 }],
    ['a symbol', [Symbol('s')]],
    ['a bigint', { a: 1n }],
    ['top-level undefined', undefined]
  ])('throws CanonicalizationError on %s', (_, value) => {
    expect(() => canonicalize(value)).toThrow(CanonicalizationError)
  })

  it('throws CanonicalizationError on cycles', () => {
    const a: Record<string, unknown> = { x: 1 }
    a.self = a
    expect(() => canonicalize(a)).toThrow(CanonicalizationError)
    const arr: unknown[] = []
    arr.push({ arr })
    expect(() => canonicalize(arr)).toThrow(expect.objectContaining({ name: 'CanonicalizationError' }))
  })

  it('throws CanonicalizationError on absurd nesting instead of overflowing the stack', () => {
    let deep: unknown = 1
    for (let i = 0; i < 100_000; i++) deep = [deep]
    expect(() => canonicalize(deep)).toThrow(CanonicalizationError)
  })

  it('canonicalizes moderately deep values (past the cycle-tracking threshold)', () => {
    let deep: unknown = 1
    for (let i = 0; i < 200; i++) deep = { k: deep }
    const text = canonicalize(deep)
    expect(JSON.parse(text)).toEqual(deep)
  })
})

describe('utf8Length', () => {
  it('counts UTF-8 bytes', () => {
    expect(utf8Length('abc')).toBe(3)
    expect(utf8Length('é')).toBe(2)
    expect(utf8Length('漢')).toBe(3)
    expect(utf8Length('😀')).toBe(4)
  })
})
