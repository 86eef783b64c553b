import { assertJsonDepth, JsonTooDeepError, MAX_JSON_DEPTH } from '../json/index.js'
import { MoltSpeakError } from './errors.js'
import { payloadTooDeep } from './payload-rules.js'

/*
 * The whole-message nesting limit (MAX_JSON_DEPTH brackets), beside the
 * payload's own MAX_PAYLOAD_DEPTH. On the wire it is checked on the raw bytes
 * before JSON.parse; on a value (a message built in process) by a walk that
 * stops at the limit. Both refuse with E_INVALID_PARAM, like an oversized message.
 */

/**
 * Refuse wire bytes or text nesting deeper than `maxDepth`, before parsing
 *
 * @throws {MoltSpeakError} E_INVALID_PARAM
 */
export function checkMessageDepth (input: Uint8Array | string, maxDepth: number = MAX_JSON_DEPTH): void {
  try {
    assertJsonDepth(input, maxDepth)
  } catch (err) {
    if (err instanceof JsonTooDeepError) throw tooDeep(maxDepth, err)
    throw err
  }
}

/**
 * Refuse a parsed message nesting deeper than `maxDepth` brackets anywhere
 * (`ext`, `from`, unknown top-level fields, not only `p`)
 *
 * @throws {MoltSpeakError} E_INVALID_PARAM
 */
export function checkValueDepth (message: object, maxDepth: number = MAX_JSON_DEPTH): void {
  // the message object is bracket level 1, payloadTooDeep's level 0
  if (payloadTooDeep(message, maxDepth - 1)) throw tooDeep(maxDepth)
}

function tooDeep (maxDepth: number, cause?: Error): MoltSpeakError {
  return new MoltSpeakError('E_INVALID_PARAM', `Message nests deeper than ${maxDepth} levels`, { cause })
}
