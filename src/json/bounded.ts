import { MAX_JSON_DEPTH } from './constants.js'
import { JsonSyntaxError, JsonTooDeepError } from './errors.js'

/*
 * Depth check on the raw text, before JSON.parse. One pass, constant memory,
 * no regex: each byte is looked at once and the scan stops at the first
 * bracket over the limit, so a megabyte of `[[[[…` costs `limit` steps.
 *
 * Outside strings every `[`/`{` adds a level and every `]`/`}` removes one.
 * A string is skipped to its closing quote: the next `"` not preceded by an
 * odd run of backslashes, so `"\"["` counts nothing. Each backslash is looked
 * back at by at most the one quote after it, so the scan stays linear.
 * For valid JSON the count is exact; for invalid JSON it may be anything, and
 * JSON.parse refuses the text afterwards. UTF-8 continuation bytes are all
 * ≥ 0x80, so the byte scan never mistakes part of a character for ASCII.
 */

const QUOTE = 0x22
const BACKSLASH = 0x5c
const OPEN_ARRAY = 0x5b
const CLOSE_ARRAY = 0x5d
const OPEN_OBJECT = 0x7b
const CLOSE_OBJECT = 0x7d

const utf8 = new TextDecoder('utf-8', { fatal: true })

/**
 * Throw JsonTooDeepError when `input` (UTF-8 bytes or a string) nests deeper
 * than `maxDepth` levels; the outermost container is level 1
 */
export function assertJsonDepth (input: Uint8Array | string, maxDepth: number = MAX_JSON_DEPTH): void {
  const offset = typeof input === 'string' ? scanText(input, maxDepth) : scanBytes(input, maxDepth)
  if (offset >= 0) throw new JsonTooDeepError(maxDepth, offset)
}

/**
 * Decode (strict UTF-8), check the depth, then JSON.parse
 *
 * @throws {JsonTooDeepError} nested deeper than `maxDepth`
 * @throws {JsonSyntaxError} not UTF-8 or not JSON
 */
export function parseBoundedJson (input: Uint8Array | string, maxDepth: number = MAX_JSON_DEPTH): unknown {
  assertJsonDepth(input, maxDepth)
  let text: string
  try {
    text = typeof input === 'string' ? input : utf8.decode(input)
  } catch (err: any) {
    throw new JsonSyntaxError('not valid UTF-8', { cause: err })
  }
  try {
    return JSON.parse(text)
  } catch (err: any) {
    throw new JsonSyntaxError(err.message, { cause: err })
  }
}

// Two copies of one loop, for bytes and for UTF-16 text: one generic loop
// through an accessor measured 2–3× slower (the scan is on every frame's path).

/** Offset in `bytes` of the first bracket over the limit, or -1 */
function scanBytes (bytes: Uint8Array, maxDepth: number): number {
  // fewer units than the limit cannot open more levels than it
  if (bytes.length <= maxDepth) return -1
  let depth = 0
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]
    if (b === QUOTE) {
      // jump to the closing quote (native indexOf); it is one not preceded by an odd run of backslashes
      for (;;) {
        const q = bytes.indexOf(QUOTE, i + 1)
        if (q < 0) return -1
        let k = q - 1
        while (bytes[k] === BACKSLASH) k--
        i = q
        if (((q - 1 - k) & 1) === 0) break
      }
    } else if (b === OPEN_ARRAY || b === OPEN_OBJECT) {
      if (++depth > maxDepth) return i
    } else if (b === CLOSE_ARRAY || b === CLOSE_OBJECT) {
      depth--
    }
  }
  return -1
}

/** scanBytes over UTF-16 units (every character that matters is ASCII) */
function scanText (text: string, maxDepth: number): number {
  if (text.length <= maxDepth) return -1
  let depth = 0
  for (let i = 0; i < text.length; i++) {
    const b = text.charCodeAt(i)
    if (b === QUOTE) {
      for (;;) {
        const q = text.indexOf('"', i + 1)
        if (q < 0) return -1
        let k = q - 1
        while (text.charCodeAt(k) === BACKSLASH) k--
        i = q
        if (((q - 1 - k) & 1) === 0) break
      }
    } else if (b === OPEN_ARRAY || b === OPEN_OBJECT) {
      if (++depth > maxDepth) return i
    } else if (b === CLOSE_ARRAY || b === CLOSE_OBJECT) {
      depth--
    }
  }
  return -1
}
