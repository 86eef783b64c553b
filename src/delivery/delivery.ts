import { TypedEventEmitter, serviceDependencies } from '@libp2p/interface'
import type { ComponentLogger, Connection, Libp2pEvents, Logger, PeerId, Startable, TypedEventTarget } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { MAX_MESSAGE_BYTES, MoltSpeakError, validateMessage, type MoltMessage } from '../moltspeak/index.js'
import { MessageTooLargeError } from '../services/speak/errors.js'
import type { Route } from '../routing/route.js'
import type { Speak } from '../services/speak/index.js'
import type { MailboxClient, MailboxTarget } from '../services/mailbox/index.js'
import { MailboxRefusedError } from '../services/mailbox/index.js'
import type { Outbox, OutboxEntry, DeadLetter } from './outbox.js'
import * as c from './constants.js'
import { PRIORITIES, type Priority } from '../services/speak/priority-queue.js'
import type { DeliveryMode } from './constants.js'

/** Where a send ended up when send() resolved */
export type DeliveryStatus = 'delivered' | 'stored' | 'queued'

/** A relay mailbox that refused a deposit, as the sender is told */
export interface MailboxRefusal {
  relay: string
  code: string
  reason: string
  message: string
  retryAfter?: number
}

export interface DeliveryOutcome {
  status: DeliveryStatus
  /** `direct`/`relayed` when delivered, `mailbox` when stored; absent when queued */
  route?: Route
  /** The circuit relay that carried it (relayed), or the first mailbox relay (stored) */
  relay?: string
  /** Mailbox relays holding it, each until its expiry */
  mailboxes?: Array<{ relay: string, expires: number }>
  /** Mailbox relays that refused it (quota, rate, size), with their reason */
  refusals?: MailboxRefusal[]
  /** Why the direct attempt failed, when not delivered */
  lastError?: string
}

/** How Delivery reaches peers: resolution and what the connections say (the node's PeerResolver) */
export interface DeliveryRoutes {
  /** Make sure a connection is open: peer store → routing record → direct → circuit */
  connect(peer: PeerId, options: { signal?: AbortSignal }): Promise<void>
  /** Open and opening connections to `peer`, or to every peer without one */
  connections(peer?: PeerId): Connection[]
  /** Whether an open connection to the peer exists (then speak's ack timeout bounds the attempt, no dial timer is needed) */
  isConnected(peer: PeerId): boolean
  /** How traffic to a connected peer travels now */
  routeTo(peer: PeerId): { route: Route, relay?: string }
  /** The relays whose mailboxes a peer reads (its routing record, circuit addresses, card) */
  mailboxTargets(peer: PeerId, options: { signal?: AbortSignal }): Promise<MailboxTarget[]>
  /** Whether `relay` carries or holds mail for `peer`: its reconnection is a reason to retry that peer at once */
  reachesVia(peer: string, relay: string): boolean
}

export interface DeliveryComponents {
  events: TypedEventTarget<Libp2pEvents>
  logger: ComponentLogger
  speak: Pick<Speak, 'send'>
  mailbox: Pick<MailboxClient, 'deposit'>
  /** Where the outbox lives (opened before services start) */
  moltStore: { readonly outbox: Outbox }
  moltPeers: DeliveryRoutes
  /** Signs a message that is about to outlive its stream */
  moltMessages: { sign(message: MoltMessage): MoltMessage }
}

export interface DeliveryEvents {
  /** Outbox entries delivered later, and how */
  'outbox:delivered': CustomEvent<{ entries: OutboxEntry[], route: Route }>
  /** Outbox entries handed to relay mailboxes later */
  'outbox:stored': CustomEvent<OutboxEntry[]>
  /** Entries given up on: expired or refused by the recipient */
  'outbox:dead': CustomEvent<DeadLetter[]>
}

interface RetryState {
  attempt: number
  timer?: ReturnType<typeof setTimeout>
  flushing: boolean
  again: boolean
}

/** Messages one flush round sends at once (the speak session pipelines them) */
const FLUSH_CHUNK = 1024

/**
 * The delivery pipeline (protocols/delivery.md): a direct attempt over speak,
 * then — for at-least-once and exactly-once — the outbox (durable, retried
 * with backoff whenever the peer may be reachable) and deposits with the
 * recipient's relay mailboxes. A message goes to the outbox before the
 * mailbox, so nothing is lost if the deposit fails or the process dies.
 */
export class Delivery extends TypedEventEmitter<DeliveryEvents> implements Startable {
  private readonly encoder = new TextEncoder()
  private readonly retries = new Map<string, RetryState>()
  private readonly unreachableUntil = new Map<string, number>()
  private readonly log: Logger
  private started = false

  readonly [Symbol.toStringTag] = 'molt/delivery'
  readonly [serviceDependencies] = ['@molt/speak', '@molt/mailbox-client']

  constructor (private readonly components: DeliveryComponents) {
    super()
    this.log = components.logger.forComponent('molt:delivery')
  }

  private get outbox (): Outbox {
    return this.components.moltStore.outbox
  }

  start (): void {
    this.started = true
    this.components.events.addEventListener('peer:connect', this.onConnect)
  }

  /** Once the node listens: retry what the outbox kept from before */
  afterStart (): void {
    for (const peer of this.outbox.peers()) this.schedule(peer, 0)
  }

  /** Before the other services stop: no retry starts while they go down */
  beforeStop (): void {
    this.started = false
    this.components.events.removeEventListener('peer:connect', this.onConnect)
    for (const state of this.retries.values()) clearTimeout(state.timer)
    this.retries.clear()
  }

  stop (): void {}

  /** Retry one peer's outbox now (e.g. discovery just found it) */
  retryNow (peer: string): void {
    if (this.outbox.hasPending(peer)) this.schedule(peer, 0)
  }

  async send (peer: PeerId, message: MoltMessage, mode: DeliveryMode, options: { signal?: AbortSignal, priority?: Priority } = {}): Promise<DeliveryOutcome> {
    const body = this.encoder.encode(JSON.stringify(message))
    const priority = options.priority
    if (mode === 'best-effort') {
      await this.speakSend(peer, body, { ...options, re: message.re })
      return { status: 'delivered', ...this.components.moltPeers.routeTo(peer) }
    }
    const peerKey = peer.toString()
    // taken now, so concurrent sends keep their order in the outbox whatever finishes first
    const seq = this.outbox.takeSeq()
    let lastError: string | undefined
    if (!this.outbox.hasPending(peerKey) && !this.heldUnreachable(peerKey)) {
      // a timer per message is measurable at 50k msg/s: bound only attempts that must dial
      const signal = this.components.moltPeers.isConnected(peer)
        ? options.signal
        : AbortSignal.any([...(options.signal != null ? [options.signal] : []), AbortSignal.timeout(c.DIRECT_ATTEMPT_TIMEOUT)])
      try {
        // a reply goes back on its request's stream when it can (speak 1.1.0)
        await this.speakSend(peer, body, { signal, priority, re: message.re })
        return { status: 'delivered', ...this.components.moltPeers.routeTo(peer) }
      } catch (err: any) {
        if (options.signal?.aborted === true || isFinal(err)) throw err
        lastError = err.message
        // a peer that answered (E_INTERNAL: it could not store the message) is reachable
        if (!(err instanceof MoltSpeakError)) this.unreachableUntil.set(peerKey, Date.now() + c.UNREACHABLE_HOLD)
      }
    }
    // a message that will wait (maybe days) must be one the recipient can accept: refuse it now otherwise
    // (on the direct path the recipient's own checks answer at once)
    if (body.byteLength > MAX_MESSAGE_BYTES) throw new MessageTooLargeError(`message of ${body.byteLength} bytes exceeds the ${MAX_MESSAGE_BYTES} byte limit`)
    validateMessage(message)
    // it must outlive this stream: sign it (the recipient checks mailbox messages' signatures)
    const signed = message.sig == null ? this.components.moltMessages.sign(message) : message
    const entry: OutboxEntry = {
      seq,
      peer: peerKey,
      id: signed.id,
      op: signed.op,
      mode,
      json: JSON.stringify(signed),
      createdAt: Date.now(),
      exp: signed.exp ?? Date.now() + c.DEFAULT_MESSAGE_TTL,
      attempts: lastError !== undefined ? 1 : 0,
      lastError,
      ...(priority !== undefined && priority !== 'normal' ? { priority } : {})
    }
    await this.outbox.add(entry)
    const deposited = await this.deposit(peer, [entry], options.signal)
    if (deposited.mailboxes.length > 0) {
      await this.outbox.remove([entry])
      return { status: 'stored', route: 'mailbox', relay: deposited.mailboxes[0].relay, mailboxes: deposited.mailboxes, refusals: deposited.refusals, lastError }
    }
    this.schedule(peerKey)
    return { status: 'queued', refusals: deposited.refusals, lastError }
  }

  /** speak, after resolution (peer store → routing record → direct → circuit) on every attempt, retries included */
  private async speakSend (peer: PeerId, body: Uint8Array, options: { signal?: AbortSignal, priority?: Priority, re?: string }): Promise<void> {
    // checked here first: no extra await per message on the hot path of an open connection
    if (this.components.moltPeers.connections(peer).length === 0) await this.components.moltPeers.connect(peer, options)
    await this.components.speak.send(peer, body, options)
  }

  private dead (letters: DeadLetter[]): void {
    if (letters.length > 0) this.safeDispatchEvent('outbox:dead', { detail: letters })
  }

  /** Deposit entries with up to MAILBOX_COPIES of the peer's relays; all must be taken by one relay to count */
  private async deposit (peer: PeerId, entries: OutboxEntry[], signal?: AbortSignal): Promise<{ mailboxes: Array<{ relay: string, expires: number }>, refusals: MailboxRefusal[] }> {
    const targets = (await this.components.moltPeers.mailboxTargets(peer, { signal })).slice(0, c.MAILBOX_COPIES)
    const mailboxes: Array<{ relay: string, expires: number }> = []
    const refusals: MailboxRefusal[] = []
    const messages = entries.map(entry => JSON.parse(entry.json) as MoltMessage)
    await Promise.all(targets.map(async (target) => {
      const relay = target.peerId.toString()
      const results = await Promise.allSettled(messages.map(async message => this.components.mailbox.deposit(target, peer, message, { signal })))
      const failed = results.find((result): result is PromiseRejectedResult => result.status === 'rejected')
      if (failed === undefined) {
        mailboxes.push({ relay, expires: Math.max(...results.map(r => (r as PromiseFulfilledResult<{ expires: number }>).value.expires)) })
        return
      }
      const err = failed.reason
      refusals.push(err instanceof MailboxRefusedError
        ? { relay, code: err.code, reason: err.reason, message: err.message, ...(err.retryAfter != null ? { retryAfter: err.retryAfter } : {}) }
        : { relay, code: 'E_INTERNAL', reason: 'unreachable', message: err?.message ?? String(err) })
      this.log('deposit with %s for %p failed - %s', relay, peer, err?.message)
    }))
    return { mailboxes, refusals }
  }

  private heldUnreachable (peer: string): boolean {
    const until = this.unreachableUntil.get(peer)
    if (until === undefined) return false
    if (until > Date.now()) return true
    this.unreachableUntil.delete(peer)
    return false
  }

  private readonly onConnect = (evt: CustomEvent<PeerId>): void => {
    const peer = evt.detail.toString()
    this.unreachableUntil.delete(peer)
    if (this.outbox.hasPending(peer)) this.schedule(peer, 0)
    // the first connection after none: this node is back on the network (its relay or bootstrap peer
    // returned), so every waiting recipient may be resolvable again — retry them now, not at their backoff
    const backOnline = !this.components.moltPeers.connections().some(connection => connection.remotePeer.toString() !== peer)
    // otherwise only a relay of a waiting recipient: the recipient may be reachable through it, or its mailbox open
    for (const waiting of this.outbox.peers()) {
      if (waiting !== peer && (backOnline || this.components.moltPeers.reachesVia(waiting, peer))) this.schedule(waiting, 0)
    }
  }

  private schedule (peer: string, delay?: number): void {
    if (!this.started) return
    let state = this.retries.get(peer)
    if (state === undefined) this.retries.set(peer, state = { attempt: 0, flushing: false, again: false })
    if (state.flushing) {
      if (delay === 0) state.again = true
      return
    }
    const wait = delay ?? backoff(state.attempt)
    if (state.timer !== undefined) {
      if (delay !== 0) return // a retry is already planned
      clearTimeout(state.timer)
    }
    state.timer = setTimeout(() => {
      const current = this.retries.get(peer)
      if (current === undefined) return
      current.timer = undefined
      this.flush(peer, current).catch((err) => { this.log.error('outbox flush to %s failed - %e', peer, err) })
    }, wait)
    state.timer.unref?.()
  }

  /** Send a peer's outbox in order until it is empty or the peer proves unreachable */
  private async flush (peer: string, state: RetryState): Promise<void> {
    state.flushing = true
    let failed = false
    try {
      do {
        state.again = false
        failed = !(await this.flushRound(peer))
      } while (!failed && this.started && (state.again || this.outbox.hasPending(peer)))
    } finally {
      state.flushing = false
    }
    if (!this.started) return
    if (failed) {
      state.attempt++
      this.schedule(peer)
    } else {
      this.retries.delete(peer)
      if (state.again) this.schedule(peer, 0)
    }
  }

  /** One round: expire, send a chunk directly, deposit what failed; true when everything sent went out */
  private async flushRound (peer: string): Promise<boolean> {
    const now = Date.now()
    const pending = this.outbox.pending(peer)
    const expired = pending.filter(entry => entry.exp <= now)
    if (expired.length > 0) this.dead(await this.outbox.bury(expired, 'expired', now))
    // by band, in send order within each: a high-priority message overtakes a backlog of low ones
    const chunk = byPriority(pending.filter(entry => entry.exp > now)).slice(0, FLUSH_CHUNK)
    if (chunk.length === 0) return true
    const peerId = peerIdFromString(peer)
    const results = await Promise.allSettled(chunk.map(async (entry) => {
      entry.attempts++
      await this.speakSend(peerId, this.encoder.encode(entry.json), { priority: entry.priority })
    }))
    const delivered: OutboxEntry[] = []
    const refused: OutboxEntry[] = []
    const undelivered: OutboxEntry[] = []
    results.forEach((result, i) => {
      const entry = chunk[i]
      if (result.status === 'fulfilled') delivered.push(entry)
      else if (isFinal(result.reason)) refused.push(entry)
      else {
        entry.lastError = result.reason?.message ?? String(result.reason)
        undelivered.push(entry)
      }
    })
    if (delivered.length > 0) {
      await this.outbox.remove(delivered)
      this.safeDispatchEvent('outbox:delivered', { detail: { entries: delivered, route: this.components.moltPeers.routeTo(peerId).route } })
    }
    if (refused.length > 0) this.dead(await this.outbox.bury(refused, 'refused'))
    if (undelivered.length === 0) return true
    // still unreachable: hand what waits to the peer's relay mailboxes, if it has any
    const { mailboxes } = await this.deposit(peerId, undelivered)
    if (mailboxes.length > 0) {
      await this.outbox.remove(undelivered)
      this.safeDispatchEvent('outbox:stored', { detail: undelivered })
      return true
    }
    return false
  }
}

/**
 * Errors that retrying cannot fix: the recipient refused the message, or it is
 * too large. Not `E_INTERNAL`: the recipient could not store it (disk full, …)
 * and says so instead of acknowledging it, so it is kept and retried.
 */
function isFinal (err: any): boolean {
  return (err instanceof MoltSpeakError && err.code !== 'E_INTERNAL') || err?.name === 'MessageTooLargeError'
}

/** Entries high band first, then normal, then low, each band in send order */
function byPriority (entries: OutboxEntry[]): OutboxEntry[] {
  if (entries.every(entry => entry.priority === undefined)) return entries
  return PRIORITIES.flatMap(band => entries.filter(entry => (entry.priority ?? 'normal') === band))
}

function backoff (attempt: number): number {
  const base = Math.min(c.RETRY_MAX, c.RETRY_MIN * 2 ** attempt)
  return Math.round(base * (1 - c.RETRY_JITTER + Math.random() * 2 * c.RETRY_JITTER))
}

export function delivery (): (components: DeliveryComponents) => Delivery {
  return (components) => new Delivery(components)
}
