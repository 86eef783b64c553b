import { randomUUID } from 'node:crypto'
import { PROTOCOL_VERSION } from './constants.js'
import type { AgentRef, Classification, MoltMessage, Op, PiiMeta } from './types.js'

export * from './payloads.js'

export interface MessageInit<P extends Record<string, unknown> = Record<string, unknown>> {
  op: Op
  from: AgentRef
  to: AgentRef
  /** @default {} */
  p?: P
  /** @default 'int' (every reference SDK's default) */
  cls?: Classification
  re?: string
  exp?: number
  cap?: string[]
  ext?: Record<string, Record<string, unknown>>
  pii_meta?: PiiMeta
  /** @default a random lower-case UUID */
  id?: string
  /** @default Date.now() */
  ts?: number
}

export interface ReplyInit<P extends Record<string, unknown> = Record<string, unknown>> {
  /** @default 'respond' */
  op?: Op
  p: P
  from: AgentRef
  /** @default the request's cls (`conf` for a `pii` request without pii_meta here, see replyClassification) */
  cls?: Classification
  exp?: number
  cap?: string[]
  ext?: Record<string, Record<string, unknown>>
  pii_meta?: PiiMeta
}

/** A fresh message id: a random lower-case UUID, as the schema requires */
export function newMessageId (): string {
  return randomUUID()
}

/**
 * An unsigned v0.1 message. Optional fields that are `undefined` are left out
 * so the canonical form (and so the signature) matches the JSON on the wire.
 * `from`, `to` and `p` are used as given, not copied
 */
export function createMessage<P extends Record<string, unknown> = Record<string, unknown>> (init: MessageInit<P>): MoltMessage<P> {
  const msg: MoltMessage<P> = {
    v: PROTOCOL_VERSION,
    id: init.id ?? newMessageId(),
    ts: init.ts ?? Date.now(),
    op: init.op,
    from: init.from,
    to: init.to,
    p: init.p ?? ({} as P),
    cls: init.cls ?? 'int'
  }
  if (init.re !== undefined) msg.re = init.re
  if (init.exp !== undefined) msg.exp = init.exp
  if (init.cap !== undefined) msg.cap = init.cap
  if (init.ext !== undefined) msg.ext = init.ext
  if (init.pii_meta !== undefined) msg.pii_meta = init.pii_meta
  return msg
}

/**
 * The `cls` of a reply that does not set one: the request's, except where
 * that would make the reply invalid. `pii` needs the replier's own consent
 * metadata (copying the requester's consent would claim a consent the replier
 * was never given), and `sec` needs both ends in one org; either falls back to
 * `conf`, which keeps the data confidential
 */
export function replyClassification (request: Pick<MoltMessage, 'cls' | 'from'>, init: { cls?: Classification, pii_meta?: PiiMeta }, replierOrg: string): Classification {
  if (init.cls !== undefined) return init.cls
  if (request.cls === 'pii' && init.pii_meta === undefined) return 'conf'
  if (request.cls === 'sec' && request.from.org !== replierOrg) return 'conf'
  return request.cls
}

/**
 * A reply to `request`: `re` is the request's id and `to` its sender (agent,
 * org and key only; the encryption key and any other fields are not echoed)
 */
export function replyTo<P extends Record<string, unknown> = Record<string, unknown>> (request: MoltMessage, init: ReplyInit<P>): MoltMessage<P> {
  const sender = request.from
  const to: AgentRef = { agent: sender.agent, org: sender.org }
  if (sender.key !== undefined) to.key = sender.key
  return createMessage({
    op: init.op ?? 'respond',
    from: init.from,
    to,
    p: init.p,
    cls: replyClassification(request, init, init.from.org),
    re: request.id,
    exp: init.exp,
    cap: init.cap,
    ext: init.ext,
    pii_meta: init.pii_meta
  })
}
