import { assertJsonDepth } from '../../json/index.js'
import { InvalidCertificateError } from './errors.js'
import * as c from './constants.js'

/**
 * JSON.parse of at most MAX_CERT_BYTES of UTF-8 nesting at most MAX_CERT_DEPTH,
 * both checked on the raw input first (certificates and revocations)
 *
 * @throws {InvalidCertificateError} with `field` = `what`
 */
export function parseBounded (input: string | Uint8Array, what: string): unknown {
  const bytes = typeof input === 'string' ? Buffer.byteLength(input, 'utf8') : input.byteLength
  if (bytes > c.MAX_CERT_BYTES) throw new InvalidCertificateError(`${what} is ${bytes} bytes, over the ${c.MAX_CERT_BYTES} byte limit`, what)
  let text: string
  try {
    text = typeof input === 'string' ? input : new TextDecoder('utf-8', { fatal: true }).decode(input)
  } catch {
    throw new InvalidCertificateError(`${what} is not UTF-8`, what)
  }
  if (tooDeep(text, c.MAX_CERT_DEPTH)) throw new InvalidCertificateError(`${what} nests deeper than ${c.MAX_CERT_DEPTH}`, what)
  try {
    return JSON.parse(text)
  } catch {
    throw new InvalidCertificateError(`${what} is not JSON`, what)
  }
}

/** Whether JSON `text` nests deeper than `max` (checked on the raw text before JSON.parse builds anything) */
export function tooDeep (text: string, max: number): boolean {
  try {
    assertJsonDepth(text, max)
    return false
  } catch {
    return true
  }
}
