import { CanonicalizationError } from './errors.js'

/*
 * Canonical JSON as the Python reference SDK writes it for signing:
 * `json.dumps(v, sort_keys=True, separators=(',', ':'))` with its default
 * `ensure_ascii=True`. That is the spec's form (sorted keys, no whitespace) and
 * the only one whose signatures cover the payload (reference/moltspeak.md §1.7).
 *
 * Numbers: a JS number has no int/float distinction, and the peer reads the
 * JSON molt writes on the wire (JSON.stringify). So a number is written as
 * Python canonicalizes that wire text: what JSON.stringify prints as plain
 * digits (every integer below 1e21, `-0` as `0`) is a Python int and stays
 * digits; anything else (`0.5`, `1e-7`, `1e+21`) is a Python float and is
 * written as `repr(float)` does (`0.5`, `1e-07`, `1e+21`, `5e-05`).
 * Messages received from others are verified over their source text instead
 * (source.ts), which keeps `1.0`, `1e+16` and big integers as they were signed.
 */

// any char that is not printable ASCII, or is `"` or `\`: the string needs escaping
const NEEDS_ESCAPE = /["\\\u0000-\u001f\u007f-\uffff]/
const HAS_SURROGATE = /[\ud800-\udfff]/

// cycle tracking starts this deep: a cycle recurses forever so it gets here,
// while ordinary messages (payload depth ≤ 50) never pay for a Set
const TRACK_CYCLES_FROM = 64

const HEX: string[] = []
for (let i = 0; i < 256; i++) HEX.push(i.toString(16).padStart(2, '0'))

/**
 * Serialize a JSON value canonically: object keys sorted by code point at every
 * level, no whitespace, non-ASCII as lower-case `\uXXXX` (surrogate pairs for
 * astral characters), `/` unescaped. Object members whose value is `undefined`
 * are omitted and `undefined` array items become `null`, as in JSON.stringify;
 * `toJSON()` is honoured.
 *
 * @throws {CanonicalizationError} on cycles, functions, symbols, bigints, NaN/Infinity or a top-level `undefined`
 */
export function canonicalize (value: unknown): string {
  try {
    return write(value, 0, undefined)
  } catch (err) {
    if (err instanceof RangeError) {
      throw new CanonicalizationError('Value is too deeply nested or too large to canonicalize', { cause: err })
    }
    throw err
  }
}

/** UTF-8 byte length of a string (lone surrogates count as the 3-byte U+FFFD) */
export function utf8Length (s: string): number {
  return Buffer.byteLength(s, 'utf8')
}

function write (value: unknown, depth: number, seen: Set<object> | undefined): string {
  switch (typeof value) {
    case 'string':
      return quote(value)
    case 'number':
      return formatNumber(value)
    case 'boolean':
      return value ? 'true' : 'false'
    case 'object':
      if (value === null) return 'null'
      return writeObject(value, depth, seen)
    default:
      throw new CanonicalizationError(`Cannot canonicalize a value of type ${typeof value}`)
  }
}

function writeObject (value: object, depth: number, seen: Set<object> | undefined): string {
  const toJSON = (value as { toJSON?: unknown }).toJSON
  if (typeof toJSON === 'function') {
    return write(toJSON.call(value), depth, seen)
  }

  if (seen === undefined && depth >= TRACK_CYCLES_FROM) seen = new Set()
  if (seen !== undefined) {
    if (seen.has(value)) throw new CanonicalizationError('Cannot canonicalize a cyclic structure')
    seen.add(value)
  }

  let out: string
  const next = depth + 1
  if (Array.isArray(value)) {
    out = '['
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out += ','
      const item: unknown = value[i]
      out += item === undefined ? 'null' : write(item, next, seen)
    }
    out += ']'
  } else {
    const keys = Object.keys(value)
    if (keys.length > 1) sortKeys(keys)
    out = '{'
    let first = true
    for (const key of keys) {
      const member: unknown = (value as Record<string, unknown>)[key]
      if (member === undefined) continue
      if (first) first = false
      else out += ','
      out += quote(key) + ':' + write(member, next, seen)
    }
    out += '}'
  }

  seen?.delete(value)
  return out
}

/** Sort like Python sorts str keys: by code point, not UTF-16 code unit */
export function sortKeys (keys: string[]): void {
  const n = keys.length
  if (n > 16) {
    keys.sort()
  } else {
    // insertion sort: several times faster than Array#sort for the few keys of a typical object
    for (let i = 1; i < n; i++) {
      const key = keys[i]
      let j = i - 1
      while (j >= 0 && keys[j] > key) {
        keys[j + 1] = keys[j]
        j--
      }
      keys[j + 1] = key
    }
  }
  // code unit and code point order only disagree when a surrogate is involved
  for (const key of keys) {
    if (HAS_SURROGATE.test(key)) {
      keys.sort(compareCodePoints)
      return
    }
  }
}

/**
 * Code point order, as Python compares str: a surrogate pair is one astral code
 * point (above U+FFFF), a lone surrogate is its own code point (U+D800 sorts
 * before U+E000)
 */
export function compareCodePoints (a: string, b: string): number {
  const n = Math.min(a.length, b.length)
  let i = 0
  while (i < n) {
    // codePointAt joins a valid pair and returns a lone surrogate as is
    const ca = a.codePointAt(i) as number
    const cb = b.codePointAt(i) as number
    if (ca !== cb) return ca - cb
    i += ca > 0xffff ? 2 : 1
  }
  return a.length - b.length
}

const INTEGER_RANGE = 1e21

/**
 * A finite number as canonical JSON (see the comment at the top): digits for
 * what JSON.stringify prints as an integer, Python's `repr(float)` otherwise
 *
 * @throws {CanonicalizationError} on NaN or ±Infinity
 */
export function formatNumber (x: number): string {
  if (Number.isInteger(x) && x < INTEGER_RANGE && x > -INTEGER_RANGE) return String(x)
  if (!Number.isFinite(x)) throw new CanonicalizationError(`Cannot canonicalize the number ${x}`)
  return pythonFloatRepr(x)
}

/**
 * Python's `repr(float)`: the shortest digits that round-trip (the same digits
 * as JavaScript's), fixed notation for decimal exponents -4…15 with at least
 * one fractional digit (`100.0`), else `d.ddde±XX` with a two-digit minimum
 * exponent (`1e-07`, `1e+16`)
 */
export function pythonFloatRepr (x: number): string {
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0'
  const s = String(Math.abs(x))
  let digits: string
  let exp: number
  const e = s.indexOf('e')
  if (e >= 0) {
    digits = s.slice(0, e).replace('.', '')
    exp = Number(s.slice(e + 1))
  } else {
    const dot = s.indexOf('.')
    const int = dot < 0 ? s : s.slice(0, dot)
    const frac = dot < 0 ? '' : s.slice(dot + 1)
    if (int !== '0') {
      exp = int.length - 1
      digits = int + frac
    } else {
      const zeros = frac.length - frac.replace(/^0+/, '').length
      exp = -(zeros + 1)
      digits = frac.slice(zeros)
    }
    digits = digits.replace(/0+$/, '')
    if (digits === '') digits = '0'
  }
  let out: string
  if (exp < -4 || exp >= 16) {
    out = digits[0] + (digits.length > 1 ? '.' + digits.slice(1) : '') + 'e' + (exp < 0 ? '-' : '+') + String(Math.abs(exp)).padStart(2, '0')
  } else if (exp < 0) {
    out = '0.' + '0'.repeat(-exp - 1) + digits
  } else if (digits.length <= exp + 1) {
    out = digits + '0'.repeat(exp + 1 - digits.length) + '.0'
  } else {
    out = digits.slice(0, exp + 1) + '.' + digits.slice(exp + 1)
  }
  return x < 0 ? '-' + out : out
}

/** A string as canonical JSON: Python's `ensure_ascii` escaping */
export function quote (s: string): string {
  const n = s.length
  let i = 0
  if (n < 32) {
    // short strings: a char loop beats the regex call
    for (; i < n; i++) {
      const c = s.charCodeAt(i)
      if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) break
    }
    if (i === n) return '"' + s + '"'
  } else if (!NEEDS_ESCAPE.test(s)) {
    return '"' + s + '"'
  }
  // slow path from the first char that may need escaping
  let out = '"'
  let last = 0
  for (; i < n; i++) {
    const c = s.charCodeAt(i)
    if (c >= 0x20 && c < 0x7f && c !== 0x22 && c !== 0x5c) continue
    if (last < i) out += s.slice(last, i)
    out += escapeChar(c)
    last = i + 1
  }
  if (last < n) out += s.slice(last)
  return out + '"'
}

function escapeChar (c: number): string {
  switch (c) {
    case 0x22: return '\\"'
    case 0x5c: return '\\\\'
    case 0x0a: return '\\n'
    case 0x0d: return '\\r'
    case 0x09: return '\\t'
    case 0x08: return '\\b'
    case 0x0c: return '\\f'
    default: return '\\u' + HEX[c >> 8] + HEX[c & 0xff]
  }
}
