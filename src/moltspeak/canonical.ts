import { CanonicalizationError } from './errors.js'

/*
 * Canonical JSON as the Python reference SDK writes it for signing:
 * `json.dumps(v, sort_keys=True, separators=(',', ':'))` with its default
 * `ensure_ascii=True`. That is the spec's form (sorted keys, no whitespace) and
 * the only one whose signatures cover the payload (reference/moltspeak.md §1.7).
 *
 * Numbers are written as JSON.stringify writes them. Integers below 1e21 come
 * out as plain decimals, which is what Python prints for ints. Python differs on
 * floats: it keeps `1.0` (JS has no such value) and writes exponents as `1e-07`
 * where JS writes `1e-7`. Keep non-integers out of signed fields.
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
      if (!Number.isFinite(value)) throw new CanonicalizationError(`Cannot canonicalize the number ${value}`)
      return String(value)
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
function sortKeys (keys: string[]): void {
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

function compareCodePoints (a: string, b: string): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    let ca = a.charCodeAt(i)
    let cb = b.charCodeAt(i)
    if (ca === cb) continue
    if (ca >= 0xd800 && cb >= 0xd800) {
      // move surrogates (astral code points) above U+E000–U+FFFF
      ca = ca >= 0xe000 ? ca - 0x800 : ca + 0x2000
      cb = cb >= 0xe000 ? cb - 0x800 : cb + 0x2000
    }
    return ca - cb
  }
  return a.length - b.length
}

function quote (s: string): string {
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
