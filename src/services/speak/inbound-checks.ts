import type { PeerId } from '@libp2p/interface'
import { checkMessageDepth, MoltSpeakError, validateMessage, verifyMessageSource, createMessage, errorPayload, isMoltSpeakName } from '../../moltspeak/index.js'
import type { AgentRef, MoltMessage } from '../../moltspeak/index.js'
import { MAX_MESSAGE_LIFETIME } from '../../moltspeak/constants.js'
import type { ReplayWindow } from '../../moltspeak/replay-window.js'

const decoder = new TextDecoder('utf-8', { fatal: true })

/** What the per-message checks need to know (a part of the stream's InboundPolicy) */
export interface CheckPolicy {
  maxMessageBytes: number
  requireSignatures: boolean
  replayWindowMs: number
  maxClockSkewMs: number
  replay: ReplayWindow
  onDuplicate?: (peer: PeerId, id: string) => void
  /** Last check of a valid message (e.g. the trust inbox policy): an error refuses it */
  authorize?: (peer: PeerId, message: MoltMessage) => MoltSpeakError | undefined
}

/** A message already received within the replay window: acknowledged, not delivered again */
export const DUPLICATE = Symbol('duplicate')

/** Every per-message rule of protocols/speak.md, cheapest first */
export function check (body: Uint8Array, peer: PeerId, peerKey: string | undefined, policy: CheckPolicy): { message: MoltMessage, json: string } | Refusal | typeof DUPLICATE {
  if (body.byteLength > policy.maxMessageBytes) {
    return new Refusal(new MoltSpeakError('E_INVALID_PARAM', `message of ${body.byteLength} bytes exceeds the ${policy.maxMessageBytes} byte limit`), undefined)
  }
  try {
    checkMessageDepth(body)
  } catch (err: any) {
    return new Refusal(err, undefined)
  }
  let value: any
  let json: string
  try {
    json = decoder.decode(body)
    value = JSON.parse(json)
  } catch (err: any) {
    return new Refusal(new MoltSpeakError('E_PARSE', `message is not valid UTF-8 JSON: ${err.message}`), undefined)
  }
  let message: MoltMessage
  try {
    message = validateMessage(value, { depthChecked: true }) // checkMessageDepth(body) above
  } catch (err: any) {
    if (err instanceof MoltSpeakError) {
      return withContext(err, value)
    }
    return withContext(new MoltSpeakError('E_SCHEMA', err.message), value)
  }
  if (message.from.key != null && message.from.key !== peerKey) {
    return withContext(new MoltSpeakError('E_AUTH_FAILED', 'from.key does not match the authenticated peer', { field: 'from.key' }), message)
  }
  // a refusal by sender (the trust inbox policy, cached per sender) before the costly signature check
  const denied = policy.authorize?.(peer, message)
  if (denied !== undefined) return withContext(denied, message)
  if (message.sig != null) {
    // over the source text: numbers as the signer wrote them (`1.0`, big integers); a repeated key
    // or a number JavaScript cannot hold exactly is refused by name (source.ts)
    let valid: boolean
    try {
      valid = verifyMessageSource(message, json)
    } catch (err: any) {
      return withContext(err instanceof MoltSpeakError ? err : new MoltSpeakError('E_SIGNATURE', err.message), message)
    }
    if (!valid) {
      return withContext(new MoltSpeakError('E_SIGNATURE', 'signature does not verify against from.key', { field: 'sig' }), message)
    }
  } else if (policy.requireSignatures) {
    return withContext(new MoltSpeakError('E_SIGNATURE', 'this node requires signed messages (sig with from.key)', { field: 'sig' }), message)
  }
  const now = Date.now()
  if (message.exp != null && message.exp < now) {
    return withContext(new MoltSpeakError('E_TIMEOUT', `message expired at ${new Date(message.exp).toISOString()}`, { field: 'exp' }), message)
  }
  if (message.ts > now + policy.maxClockSkewMs) {
    return withContext(new MoltSpeakError('E_INVALID_PARAM', `ts is more than ${policy.maxClockSkewMs} ms in the future`, { field: 'ts' }), message)
  }
  // a message that says how long it is valid (`exp`, e.g. one retried from an outbox for days)
  // is accepted until then and its id remembered as long; otherwise the replay window bounds it
  if (message.exp == null && message.ts < now - policy.replayWindowMs) {
    return withContext(new MoltSpeakError('E_INVALID_PARAM', `ts is older than the ${policy.replayWindowMs} ms replay window and there is no exp`, { field: 'ts' }), message)
  }
  if (message.exp != null && message.exp - message.ts > MAX_MESSAGE_LIFETIME) {
    return withContext(new MoltSpeakError('E_INVALID_PARAM', `exp is more than ${MAX_MESSAGE_LIFETIME / 86_400_000} days after ts`, { field: 'exp' }), message)
  }
  if (policy.replay.checkAndRemember(`${peer.toString()}/${message.id}`, message.ts, now, message.exp)) {
    policy.onDuplicate?.(peer, message.id)
    return DUPLICATE
  }
  return { message, json }
}

/** A refused message and what could be read of it (to address the error reply) */
export class Refusal {
  constructor (readonly error: MoltSpeakError, readonly refused: unknown) {}
}

function withContext (error: MoltSpeakError, refused: unknown): Refusal {
  return new Refusal(error, refused)
}

/** The MoltSpeak `error` reply for a refused message (its `re` is the refused id when known) */
export function errorReply (from: AgentRef, refused: unknown, error: MoltSpeakError): Uint8Array {
  const original = (typeof refused === 'object' && refused !== null ? refused : {}) as Partial<MoltMessage>
  const to = isAgentRef(original.from) && isMoltSpeakName(original.from.agent) && isMoltSpeakName(original.from.org)
    ? { agent: original.from.agent, org: original.from.org }
    : { agent: 'unknown', org: 'unknown' }
  const reply = createMessage({
    op: 'error',
    from,
    to,
    cls: 'int',
    re: typeof original.id === 'string' ? original.id : undefined,
    p: errorPayload(error.code, error.message, error.field != null ? { field: error.field } : undefined) as unknown as Record<string, unknown>
  })
  return new TextEncoder().encode(JSON.stringify(reply))
}

function isAgentRef (value: unknown): value is AgentRef {
  return typeof value === 'object' && value !== null && typeof (value as AgentRef).agent === 'string' && typeof (value as AgentRef).org === 'string'
}
