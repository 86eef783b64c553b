import { sign } from 'node:crypto'
import fc from 'fast-check'
import { describe, it, expect } from 'vitest'
import {
  canonicalize, canonicalizeSource, checkSource, MoltSpeakError, parseMessage, verifyMessage, verifyMessageSource, verifyMessageSourceAsync,
  validateMessage, type MoltMessage
} from '../../../src/moltspeak/index.js'
import { MOLT_KEY, PYTHON_CANONICAL, PYTHON_SIG, privateKey } from './fixtures.js'

/*
 * Issue #15 finding 7 (signature malleability) and issue #16 (numbers in
 * signatures). Signatures here are made over hand-written Python canonical
 * forms (what json.dumps(sort_keys=True, separators=(',',':')) prints), never
 * over molt's own canonicalizer, so a wrong canonicalizer cannot agree with itself.
 */

const HEAD = `"cls":"int","from":{"agent":"alice","key":"${MOLT_KEY}","org":"acme"},"id":"550e8400-e29b-41d4-a716-446655440000","op":"query"`
const TAIL = '"to":{"agent":"bob","org":"widgets"},"ts":1703280000000,"v":"0.1"'

/** Python's canonical form of the test message with payload text `p` (already canonical) */
function canonical (p: string): string {
  return `{${HEAD},"p":${p},${TAIL}}`
}

/** ed25519 signature over exact canonical bytes */
function sigOver (canonicalText: string): string {
  return 'ed25519:' + sign(null, Buffer.from(canonicalText, 'utf8'), privateKey).toString('base64')
}

/** A wire message whose payload is written as `p` (any spelling), carrying `sig` */
function wire (p: string, sig: string): string {
  return `{"v":"0.1","id":"550e8400-e29b-41d4-a716-446655440000","ts":1703280000000,"op":"query","from":{"agent":"alice","org":"acme","key":"${MOLT_KEY}"},"to":{"agent":"bob","org":"widgets"},"p":${p},"cls":"int","sig":"${sig}"}`
}

function verifyText (text: string): boolean {
  return verifyMessageSource(validateMessage(JSON.parse(text)), text)
}

function refusal (fn: () => unknown): MoltSpeakError {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(MoltSpeakError)
    return err as MoltSpeakError
  }
  throw new Error('expected a MoltSpeakError')
}

describe('finding 7: one signature, one content', () => {
  it('a signature over 100 does not verify 100.0 or 1e2 (the value-based check accepted all three)', () => {
    const sig = sigOver(canonical('{"amount":100,"domain":"pay"}'))
    const texts = ['100', '100.0', '1e2'].map(n => wire(`{"domain":"pay","amount":${n}}`, sig))
    // the old path: JSON.parse makes all three the number 100, so one signature verified all of them
    for (const text of texts) expect(verifyMessage(JSON.parse(text) as MoltMessage)).toBe(true)
    expect(texts.map(verifyText)).toEqual([true, false, false])
  })

  it('a signature over 100.0 (a Python float) verifies 100.0 and 1e2 — the same float everywhere — but not 100', () => {
    const sig = sigOver(canonical('{"amount":100.0,"domain":"pay"}'))
    expect(['100.0', '1e2', '1E+2', '100'].map(n => verifyText(wire(`{"domain":"pay","amount":${n}}`, sig)))).toEqual([true, true, true, false])
  })

  it('2^53 verifies; 2^53+1 is refused by name instead of verifying as 2^53', () => {
    const sig = sigOver(canonical('{"amount":9007199254740992,"domain":"pay"}'))
    expect(verifyText(wire('{"domain":"pay","amount":9007199254740992}', sig))).toBe(true)
    const text = wire('{"domain":"pay","amount":9007199254740993}', sig)
    expect(verifyMessage(JSON.parse(text) as MoltMessage)).toBe(true) // the old path: JSON.parse rounded it
    const err = refusal(() => verifyText(text))
    expect(err.code).toBe('E_SIGNATURE')
    expect(err.field).toBe('p.amount')
    expect(err.message).toMatch(/9007199254740993 at p\.amount has no exact double value/)
  })

  it('refuses 2^53+1 even when it is exactly what was signed (molt would deliver 2^53)', () => {
    const text = wire('{"domain":"pay","amount":9007199254740993}', sigOver(canonical('{"amount":9007199254740993,"domain":"pay"}')))
    expect(refusal(() => verifyText(text)).code).toBe('E_SIGNATURE')
  })

  it('a \\u0061mount key is the key "amount" for every parser: it verifies as amount', () => {
    const sig = sigOver(canonical('{"amount":100,"domain":"pay"}'))
    expect(verifyText(wire('{"domain":"pay","\\u0061mount":100}', sig))).toBe(true)
  })

  it.each([
    ['"amount":999,"amount":100', '"amount"'],
    ['"amount":999,"\\u0061mount":100', '"amount"'],
    ['"amount":100,"am\\u006fu\\u006et":100', '"amount"']
  ])('refuses duplicate keys %s (JavaScript keeps the last, other parsers the first)', (members, key) => {
    const sig = sigOver(canonical('{"amount":100,"domain":"pay"}'))
    const text = wire(`{"domain":"pay",${members}}`, sig)
    expect(verifyMessage(JSON.parse(text) as MoltMessage)).toBe(true) // the old path
    const err = refusal(() => verifyText(text))
    expect(err.code).toBe('E_PARSE')
    expect(err.field).toBe('p')
    expect(err.message).toContain(`Duplicate key ${key} in p`)
  })
})

describe('spec §1.7 test vector, verified over its wire text', () => {
  const p = '{"domain":"weather","intent":"forecast","params":{"location":"Tokyo"}}'

  it('the source canonical form is the Python form and the Python signature verifies', () => {
    const text = wire(p, PYTHON_SIG)
    expect(canonicalizeSource(text)).toBe(PYTHON_CANONICAL)
    expect(verifyText(text)).toBe(true)
    // pretty-printed and with escaped keys it is the same message
    const pretty = JSON.stringify(JSON.parse(text), null, 2).replace('"domain"', '"\\u0064omain"')
    expect(verifyText(pretty)).toBe(true)
  })

  it('one changed byte of content fails', () => {
    expect(verifyText(wire(p.replace('Tokyo', 'Tokyp'), PYTHON_SIG))).toBe(false)
  })
})

describe('canonicalizeSource', () => {
  it('reproduces the spec test vector from its wire text', () => {
    const text = wire('{"domain":"weather","intent":"forecast","params":{"location":"Tokyo"}}', 'ed25519:x')
    expect(canonicalizeSource(text)).toBe(canonical('{"domain":"weather","intent":"forecast","params":{"location":"Tokyo"}}'))
  })

  it.each([
    ['1.0', '1.0'], ['0.1', '0.1'], ['0.00005', '5e-05'], ['5e-05', '5e-05'], ['1e-7', '1e-07'], ['1E-07', '1e-07'],
    ['1e+16', '1e+16'], ['1e16', '1e+16'], ['10000000000000000', '10000000000000000'], ['-0.0', '-0.0'], ['-0', '0'],
    ['1.5e300', '1.5e+300'], ['2.5E-300', '2.5e-300'], ['123456789012345678901234567890e-29', '1.2345678901234567'],
    ['18446744073709551616', '18446744073709551616'], ['-9007199254740992', '-9007199254740992'], ['0', '0'], ['1e-400', '0.0']
  ])('writes the number %s as Python does: %s', (source, python) => {
    expect(canonicalizeSource(`{"a":${source}}`)).toBe(`{"a":${python}}`)
  })

  it.each([
    ['1e400', 'E_SIGNATURE', /overflows a double/],
    ['-1e400', 'E_SIGNATURE', /overflows a double/],
    ['1000000000000000000000000000000', 'E_SIGNATURE', /no exact double value/],
    ['-9007199254740993', 'E_SIGNATURE', /no exact double value/]
  ])('refuses the number %s', (source, code, message) => {
    const err = refusal(() => canonicalizeSource(`{"p":{"x":[1,{"y":${source}}]}}`))
    expect(err.code).toBe(code)
    expect(err.field).toBe('p.x.1.y')
    expect(err.message).toMatch(message)
  })

  it('re-escapes strings and keys as Python (ensure_ascii), whatever escapes the source used', () => {
    expect(canonicalizeSource('{"\\u00e9":"\\u00e9","é":"é"}'.replace('"é":"é"', '"b":"é😀\\/\\n"'))).toBe('{"b":"\\u00e9\\ud83d\\ude00/\\n","\\u00e9":"\\u00e9"}')
    expect(canonicalizeSource('{"a":"x\\"y\\\\","b":"\\\\"}')).toBe('{"a":"x\\"y\\\\","b":"\\\\"}')
  })

  it('sorts by code point: a lone surrogate before U+E000 before astral', () => {
    expect(canonicalizeSource('{"\\ud83d\\ude00":3,"\\ue000":2,"\\ud800":1}')).toBe('{"\\ud800":1,"\\ue000":2,"\\ud83d\\ude00":3}')
  })

  it('drops only the top-level sig and keeps whitespace out', () => {
    expect(canonicalizeSource(' { "sig" : "s" , "p" : { "sig" : [ 1 , 2 ] , "a" : true , "b" : null } } ')).toBe('{"p":{"a":true,"b":null,"sig":[1,2]}}')
  })

  it('refuses a repeated sig', () => {
    expect(refusal(() => canonicalizeSource('{"sig":"a","v":"0.1","sig":"b"}')).message).toContain('Duplicate key "sig" in the top level')
  })

  it('turns nesting too deep to walk into E_PARSE, not a crash', () => {
    const depth = 200_000
    const text = '{"p":' + '['.repeat(depth) + ']'.repeat(depth) + '}'
    JSON.parse(text) // V8 parses it; the recursive scanner cannot
    expect(refusal(() => canonicalizeSource(text)).code).toBe('E_PARSE')
  })
})

describe('canonicalizeSource agrees with canonicalize on what JSON.stringify writes (property, fixed seed)', () => {
  it('compact and indented text, any strings (lone surrogates included), any doubles', () => {
    fc.assert(fc.property(fc.dictionary(fc.string({ unit: 'binary' }), fc.jsonValue({ stringUnit: 'binary', maxDepth: 4 })), (value) => {
      for (const text of [JSON.stringify({ ...value, sig: 's' }), JSON.stringify({ sig: 's', ...value }, null, 2)]) {
        let source: string
        try {
          source = canonicalizeSource(text)
        } catch (err: any) {
          // only an integer beyond 2^53 that JavaScript prints inexactly (e.g. 2^60) may be refused
          expect(err).toBeInstanceOf(MoltSpeakError)
          expect(err.message).toMatch(/no exact double value/)
          continue
        }
        const { sig: _sig, ...rest } = JSON.parse(text)
        expect(source).toBe(canonicalize(rest))
      }
    }), { seed: 1618, numRuns: 400 })
  })
})

describe('checkSource (parseMessage\'s check, without the canonical form) refuses exactly what canonicalizeSource refuses', () => {
  /** The refusal of `fn` as code, field and message, or 'ok' */
  function outcome (fn: () => unknown): string {
    try {
      fn()
      return 'ok'
    } catch (err: any) {
      expect(err).toBeInstanceOf(MoltSpeakError)
      return `${String(err.code)} ${String(err.field)} ${String(err.message)}`
    }
  }

  it.each([
    '{"p":{"a":1,"a":2}}', '{"p":{"amount":1,"\\u0061mount":2}}', '{"sig":"a","sig":"b"}', '{"p":[{"x":1},{"y":{"z":1,"z":1}}]}',
    '{"p":{"x":[1,{"y":1e400}]}}', '{"p":{"x":[1,{"y":-9007199254740993}]}}', '{"p":{"x":"\\"\\\\","x":0}}',
    '{"p":{"a":"x","b":"x"}}', '{"p":{"a":1.5e300,"b":[true,false,null,"\\u00e9"]}}', '{"p":{"k":{}, "j":[]}}',
    // past 16 keys repeats are found by a Set: a repeat of an early key, of a late one, and none
    `{"p":{${Array.from({ length: 20 }, (_, i) => `"k${i}":${i}`).join(',')},"k3":0}}`,
    `{"p":{${Array.from({ length: 20 }, (_, i) => `"k${i}":${i}`).join(',')},"k19":0}}`,
    `{"p":{${Array.from({ length: 40 }, (_, i) => `"k${i}":${i}`).join(',')}}}`
  ])('%s', (text) => {
    JSON.parse(text) // valid JSON, as parseMessage hands it over
    expect(outcome(() => { checkSource(text) })).toBe(outcome(() => canonicalizeSource(text)))
  })

  it('random JSON with repeated keys spliced in (property, fixed seed)', () => {
    fc.assert(fc.property(fc.dictionary(fc.string({ unit: 'binary' }), fc.jsonValue({ stringUnit: 'binary', maxDepth: 4 })), fc.boolean(), (value, repeat) => {
      let text = JSON.stringify({ sig: 's', ...value }, null, repeat ? 0 : 1)
      // repeat the first member of the first non-empty object: `{"k":v,` → `{"k":v,"k":v,`
      if (repeat) text = text.replace(/\{("(?:[^"\\]|\\.)*":(?:-?\d+|"(?:[^"\\]|\\.)*"|true|false|null)),/, '{$1,$1,')
      expect(outcome(() => { checkSource(text) })).toBe(outcome(() => canonicalizeSource(text)))
    }), { seed: 1619, numRuns: 300 })
  })

  it('turns nesting too deep to walk into E_PARSE', () => {
    const depth = 200_000
    expect(refusal(() => { checkSource('{"p":' + '['.repeat(depth) + ']'.repeat(depth) + '}') }).code).toBe('E_PARSE')
  })
})

describe('parseMessage and async verification', () => {
  it('parseMessage refuses duplicate keys and inexact integers in signed messages only', () => {
    const sig = sigOver(canonical('{"amount":100,"domain":"pay"}'))
    expect(refusal(() => parseMessage(wire('{"domain":"pay","amount":1,"amount":2}', sig))).code).toBe('E_PARSE')
    expect(refusal(() => parseMessage(wire('{"domain":"pay","amount":9007199254740993}', sig))).code).toBe('E_SIGNATURE')
    // unsigned: no signature can mean two things, JSON.parse's reading is kept
    const unsigned = wire('{"domain":"pay","amount":1,"amount":2}', 'x').replace(',"sig":"x"', '')
    expect(parseMessage(unsigned).p.amount).toBe(2)
  })

  it('verifyMessageSourceAsync agrees with verifyMessageSource', async () => {
    const sig = sigOver(canonical('{"amount":1.0,"domain":"pay"}'))
    const good = wire('{"domain":"pay","amount":1.0}', sig)
    const bad = wire('{"domain":"pay","amount":1}', sig)
    expect(await verifyMessageSourceAsync(validateMessage(JSON.parse(good)), good)).toBe(true)
    expect(await verifyMessageSourceAsync(validateMessage(JSON.parse(bad)), bad)).toBe(false)
    const dup = wire('{"domain":"pay","amount":1.0,"amount":1.0}', sig)
    await expect(verifyMessageSourceAsync(validateMessage(JSON.parse(dup)), dup)).rejects.toThrow(/Duplicate key/)
  })
})
