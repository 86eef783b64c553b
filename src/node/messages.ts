import type { PeerId } from '@libp2p/interface'
import { createMessage, signMessage, helloSpeaksMolt, schemaErrorPayload, type AgentRef, type ErrorPayload, type MoltMessage } from '../moltspeak/index.js'
import type { AgentProfile } from '../config/index.js'
import type { Identity } from '../identity/index.js'
import { DEFAULT_MESSAGE_TTL, DELIVERY_MODES, EXT_NAMESPACE, type DeliveryMode } from '../delivery/constants.js'
import type { MessageInit } from './types.js'
import { MAX_PLAIN_PEERS } from './constants.js'

export interface MessageFactoryInit {
  identity: Identity
  profile: AgentProfile
  /** Sign every outgoing message (costs ~45 µs each). @default false */
  signMessages?: boolean
}

/**
 * Builds this agent's outgoing messages: `from` is the current profile, `to`
 * defaults to the peer, signed when asked (or by default), error payloads in
 * the schema's codes for peers that speak only MoltSpeak v0.1; and owns the
 * profile, which updateProfile() replaces at runtime.
 */
export class MessageFactory {
  readonly identity: Identity
  private current: AgentProfile
  private ref: AgentRef
  private readonly signByDefault: boolean
  /** Peers whose `hello` listed extensions without molt's: they get schema-only messages (protocols/speak.md, Conformance) */
  private readonly plainPeers = new Set<string>()

  constructor (init: MessageFactoryInit) {
    this.identity = init.identity
    this.current = init.profile
    this.ref = refOf(init.profile, init.identity)
    this.signByDefault = init.signMessages ?? false
  }

  get profile (): AgentProfile {
    return this.current
  }

  /** The MoltSpeak `from` of this agent's messages */
  get agent (): AgentRef {
    return this.ref
  }

  setProfile (profile: AgentProfile): void {
    this.current = profile
    this.ref = refOf(profile, this.identity)
  }

  build (peer: PeerId, init: MessageInit, sign = this.signByDefault): MoltMessage {
    const message = createMessage({
      ...init,
      from: this.ref,
      to: init.to ?? { agent: peer.toString(), org: 'peer' }
    })
    return sign ? this.sign(message) : message
  }

  sign (message: MoltMessage): MoltMessage {
    return signMessage(message, this.identity.signingKey)
  }

  /** Whether `peer` speaks molt's extensions (true unless its hello said otherwise) */
  speaksMolt (peer: string): boolean {
    return !this.plainPeers.has(peer)
  }

  /** An error payload as `peer` understands it: a peer that speaks only the v0.1 schema gets schema error codes */
  errorFor (peer: string, p: Record<string, unknown>): Record<string, unknown> {
    return this.plainPeers.has(peer) ? schemaErrorPayload(p as unknown as ErrorPayload) as unknown as Record<string, unknown> : p
  }

  /** Remember whether a peer's hello listed molt's extensions (bounded: the oldest is forgotten first) */
  noteHello (peer: string, message: MoltMessage): void {
    const molt = helloSpeaksMolt(message)
    if (molt === undefined) return
    this.plainPeers.delete(peer)
    if (molt) return
    if (this.plainPeers.size >= MAX_PLAIN_PEERS) this.plainPeers.delete(this.plainPeers.values().next().value as string)
    this.plainPeers.add(peer)
  }
}

function refOf (profile: AgentProfile, identity: Identity): AgentRef {
  return { agent: profile.name, org: profile.org, key: identity.moltKey }
}

/** molt's own `ext` fields of a message (delivery mode, receipt request, receipt) */
export function moltExt (message: MoltMessage): Record<string, unknown> | undefined {
  const ext = message.ext?.[EXT_NAMESPACE]
  return typeof ext === 'object' && ext !== null ? ext : undefined
}

export function deliveryOf (message: MoltMessage): DeliveryMode | undefined {
  const mode = moltExt(message)?.delivery
  return typeof mode === 'string' && (DELIVERY_MODES as readonly string[]).includes(mode) ? mode as DeliveryMode : undefined
}

/** The message init with molt's delivery fields: an expiry for kept messages, the mode and receipt request in ext */
export function withDelivery (init: MessageInit, delivery: DeliveryMode, receipt: boolean): MessageInit {
  if (delivery === 'best-effort' && !receipt) return init
  const fields: Record<string, unknown> = { ...(init.ext?.[EXT_NAMESPACE] ?? {}) }
  if (delivery === 'exactly-once') fields.delivery = delivery
  if (receipt) fields.receipt = true
  const now = init.ts ?? Date.now()
  return {
    ...init,
    exp: init.exp ?? (delivery !== 'best-effort' ? now + DEFAULT_MESSAGE_TTL : undefined),
    ...(Object.keys(fields).length > 0 ? { ext: { ...init.ext, [EXT_NAMESPACE]: fields } } : {})
  }
}

/**
 * Protocol housekeeping: ping/pong (the presence heartbeat, `molt ping`).
 * Answered and matched, never stored in the inbox, unless the sender asked
 * for exactly-once (the inbox then keeps its id across restarts) or a receipt.
 */
export function isHousekeeping (message: MoltMessage): boolean {
  if (message.op !== 'ping' && message.op !== 'pong') return false
  const ext = moltExt(message)
  return ext?.delivery !== 'exactly-once' && ext?.receipt !== true
}

export function messageFactory (init: MessageFactoryInit): () => MessageFactory {
  return () => new MessageFactory(init)
}
