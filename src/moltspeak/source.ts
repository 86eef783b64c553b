import { pythonFloatRepr, quote, sortKeys } from './canonical.js'
import { MoltSpeakError } from './errors.js'

/*
 * The canonical signing form of a received message, computed from its JSON
 * text rather than from the JavaScript value JSON.parse made of it.
 *
 * A MoltSpeak signature covers `json.dumps(json.loads(text) without sig,
 * sort_keys=True, separators=(',',':'))` as Python computes it. JSON.parse
 * loses what that form keeps: `1.0` becomes 1 (Python keeps a float `1.0`),
 * 2^53+1 becomes 2^53 (Python keeps the exact int). So numbers are read from
 * their source text with Python's rules: a token without `.`/`e`/`E` is an int
 * written exactly, anything else a float written as `repr(float)`.
 *
 * What JavaScript cannot represent faithfully is refused, because molt would
 * verify one content and hand the application another:
 * - a key repeated in one object, compared after unescaping (`"amount"` and
 *   `"\u0061mount"` are the same key): JavaScript keeps the last, Python's
 *   json the last, other parsers the first;
 * - an integer token whose value has no exact double (2^53+1, 10^30): the
 *   application would see a different number than the one signed;
 * - a float token that overflows a double (`1e400`): Python reads `inf`.
 * An integer with an exact double (2^53, 2^64) and every finite float token
 * are accepted.
 *
 * The text must already be valid JSON (the caller ran JSON.parse on it), so
 * the scanner only tracks structure; it recurses once per nesting level.
 */

/**
 * The canonical form of a message's JSON text without its top-level `omit`
 * member (the signature)
 *
 * @throws {MoltSpeakError} E_PARSE on a repeated key or nesting too deep to walk, E_SIGNATURE on a number without a faithful JavaScript value
 */
export function canonicalizeSource (text: string, omit = 'sig'): string {
  const scanner = new Scanner(text, omit)
  try {
    scanner.skipSpace()
    return scanner.value(0)
  } catch (err) {
    if (err instanceof RangeError) {
      throw new MoltSpeakError('E_PARSE', 'Message is too deeply nested to verify its signature', { cause: err })
    }
    throw err
  }
}

/**
 * The checks of canonicalizeSource alone, without writing the canonical form:
 * what a receiver that does not verify the signature itself runs on a signed
 * message it keeps (parseMessage), so the text means the same to every parser.
 * Writing the form (sorted members, escaped strings) was most of the scan's
 * cost and a tenth of a mailbox drain's CPU.
 *
 * @throws {MoltSpeakError} as canonicalizeSource
 */
export function checkSource (text: string): void {
  const scanner = new Scanner(text, '', false)
  try {
    scanner.skipSpace()
    scanner.value(0)
  } catch (err) {
    if (err instanceof RangeError) {
      throw new MoltSpeakError('E_PARSE', 'Message is too deeply nested to verify its signature', { cause: err })
    }
    throw err
  }
}

const MAX_EXACT_DIGITS = 15 // every integer of at most 15 digits is below 2^53
/** Keys of one object checked for repeats by a list scan; beyond, by a Set */
const SMALL_OBJECT_KEYS = 16

class Scanner {
  private pos = 0
  /** Keys from the root to the value being read, for error messages */
  private readonly path: Array<string | number> = []

  /** `write`: build the canonical form; false only checks (every value then reads as '') */
  constructor (private readonly text: string, private readonly omit: string, private readonly write = true) {}

  value (depth: number): string {
    const c = this.text.charCodeAt(this.pos)
    if (c === 0x7b) return this.write ? this.object(depth) : this.checkObject(depth)
    if (c === 0x5b) return this.array(depth)
    if (c === 0x22) {
      if (this.write) return quote(this.string())
      // a value's content is not checked: only find where it ends
      this.stringEnd()
      return ''
    }
    if (c === 0x74) return this.literal('true')
    if (c === 0x66) return this.literal('false')
    if (c === 0x6e) return this.literal('null')
    return this.number()
  }

  skipSpace (): void {
    const t = this.text
    let c = t.charCodeAt(this.pos)
    while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) c = t.charCodeAt(++this.pos)
  }

  private object (depth: number): string {
    this.pos++ // {
    const members = new Map<string, string>()
    this.skipSpace()
    if (this.text.charCodeAt(this.pos) === 0x7d) {
      this.pos++
      return '{}'
    }
    for (;;) {
      this.skipSpace()
      const key = this.string()
      if (members.has(key)) this.repeated(key)
      this.skipSpace()
      this.expect(0x3a) // :
      this.skipSpace()
      this.path.push(key)
      members.set(key, this.value(depth + 1))
      this.path.pop()
      this.skipSpace()
      const c = this.text.charCodeAt(this.pos++)
      if (c === 0x7d) break
      if (c !== 0x2c) this.malformed()
    }
    if (depth === 0) members.delete(this.omit)
    const keys = [...members.keys()]
    if (keys.length > 1) sortKeys(keys)
    let out = '{'
    for (let i = 0; i < keys.length; i++) {
      if (i > 0) out += ','
      out += quote(keys[i]) + ':' + (members.get(keys[i]) as string)
    }
    return out + '}'
  }

  /** object() without its output: only the repeated-key check and the members' own checks */
  private checkObject (depth: number): string {
    this.pos++ // {
    this.skipSpace()
    if (this.text.charCodeAt(this.pos) === 0x7d) {
      this.pos++
      return ''
    }
    // a message's objects have a handful of keys: a list is cheaper than a Set until it grows
    const keys: string[] = []
    let set: Set<string> | undefined
    for (;;) {
      this.skipSpace()
      const key = this.string()
      if (set !== undefined) {
        if (set.has(key)) this.repeated(key)
        set.add(key)
      } else {
        if (keys.includes(key)) this.repeated(key)
        keys.push(key)
        if (keys.length > SMALL_OBJECT_KEYS) set = new Set(keys)
      }
      this.skipSpace()
      this.expect(0x3a) // :
      this.skipSpace()
      this.path.push(key)
      this.value(depth + 1)
      this.path.pop()
      this.skipSpace()
      const c = this.text.charCodeAt(this.pos++)
      if (c === 0x7d) return ''
      if (c !== 0x2c) this.malformed()
    }
  }

  private repeated (key: string): never {
    throw new MoltSpeakError('E_PARSE', `Duplicate key ${JSON.stringify(key)} in ${this.where()}: a signed message must not repeat a key (parsers disagree on which one counts)`, { field: this.field() })
  }

  private array (depth: number): string {
    this.pos++ // [
    this.skipSpace()
    if (this.text.charCodeAt(this.pos) === 0x5d) {
      this.pos++
      return '[]'
    }
    let out = '['
    for (let i = 0; ; i++) {
      this.skipSpace()
      this.path.push(i)
      const item = this.value(depth + 1)
      if (this.write) out += (i > 0 ? ',' : '') + item
      this.path.pop()
      this.skipSpace()
      const c = this.text.charCodeAt(this.pos++)
      if (c === 0x5d) break
      if (c !== 0x2c) this.malformed()
    }
    return this.write ? out + ']' : ''
  }

  /** A string token's value (escapes resolved) */
  private string (): string {
    const start = this.pos + 1
    const end = this.stringEnd()
    const raw = this.text.slice(start, end)
    // escapes (`\u0061`, `\n`…) are resolved by JSON.parse itself, so keys compare as every parser reads them
    return raw.includes('\\') ? JSON.parse('"' + raw + '"') as string : raw
  }

  /** Move past a string token; the offset of its closing quote */
  private stringEnd (): number {
    const t = this.text
    if (t.charCodeAt(this.pos) !== 0x22) this.malformed()
    let end = t.indexOf('"', this.pos + 1)
    for (;;) {
      if (end < 0) this.malformed()
      // a quote preceded by an odd run of backslashes is escaped
      let slashes = 0
      while (t.charCodeAt(end - 1 - slashes) === 0x5c) slashes++
      if (slashes % 2 === 0) break
      end = t.indexOf('"', end + 1)
    }
    this.pos = end + 1
    return end
  }

  private literal (word: string): string {
    if (!this.text.startsWith(word, this.pos)) this.malformed()
    this.pos += word.length
    return word
  }

  private number (): string {
    const t = this.text
    const start = this.pos
    let c = t.charCodeAt(this.pos)
    let float = false
    // the characters a JSON number token can hold; JSON.parse already checked the grammar
    while ((c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2b || c === 0x2e || c === 0x65 || c === 0x45) {
      if (c === 0x2e || c === 0x65 || c === 0x45) float = true
      c = t.charCodeAt(++this.pos)
    }
    const token = t.slice(start, this.pos)
    if (token === '') this.malformed()
    const value = Number(token)
    if (float) {
      if (!Number.isFinite(value)) {
        throw new MoltSpeakError('E_SIGNATURE', `Signed number ${clip(token)} at ${this.where()} overflows a double; molt cannot verify it faithfully`, { field: this.field() })
      }
      return this.write ? pythonFloatRepr(value) : ''
    }
    // a Python int: written exactly as its digits (-0 is 0)
    const digits = token.charCodeAt(0) === 0x2d ? token.length - 1 : token.length
    if (digits > MAX_EXACT_DIGITS && !exactInteger(token, value)) {
      throw new MoltSpeakError('E_SIGNATURE', `Signed integer ${clip(token)} at ${this.where()} has no exact double value (beyond 2^53); molt refuses it rather than verify one number and deliver another`, { field: this.field() })
    }
    return token === '-0' ? '0' : token
  }

  private expect (code: number): void {
    if (this.text.charCodeAt(this.pos++) !== code) this.malformed()
  }

  private malformed (): never {
    throw new MoltSpeakError('E_PARSE', `Message is not valid JSON near offset ${this.pos}`)
  }

  /** The path of the value being read, as MoltSpeak `field` paths are written (`p.items.0.amount`) */
  private field (): string {
    return this.path.join('.')
  }

  private where (): string {
    return this.path.length === 0 ? 'the top level' : this.field()
  }
}

/** Whether the double nearest an integer token is that integer exactly (`2^64` yes, `2^53+1` no) */
function exactInteger (token: string, value: number): boolean {
  // not String(value): JavaScript prints 2^60 as 1152921504606847000, which is not its value
  return Number.isFinite(value) && BigInt(value) === BigInt(token)
}

function clip (token: string): string {
  return token.length > 40 ? token.slice(0, 40) + '…' : token
}
