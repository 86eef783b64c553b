import { InvalidParametersError } from '@libp2p/interface'
import type { PeerId, Startable } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { MoltSpeakError, MOLT_EXTENSION, ping as pingPayload, type MoltMessage } from '../moltspeak/index.js'
import { NotStartedError, RequestTimeoutError } from '../errors.js'
import { DEFAULT_REQUEST_TIMEOUT } from '../constants.js'
import { DEFAULT_DELIVERY, DELIVERY_MODES } from '../delivery/constants.js'
import type { Delivery } from '../delivery/delivery.js'
import type { OutboxEntry, DeadLetter } from '../delivery/outbox.js'
import { PRIORITIES, priorityOf, type Speak } from '../services/speak/index.js'
import type { TrustService } from '../services/trust/index.js'
import type { RelayClient } from '../services/relay-client/index.js'
import type { Discovery } from '../discovery/index.js'
import type { AgentMetrics } from '../metrics/index.js'
import type { MoltEvents } from './events.js'
import type { MoltStore } from './store.js'
import { withDelivery, type MessageFactory } from './messages.js'
import { namedPeer, type PeerResolver } from './peers.js'
import type { RequestTracker } from './requests.js'
import type { MessageInit, PeerInput, RequestOptions, SendOptions, SendResult } from './types.js'

export interface MessengerComponents {
  speak: Speak
  trust: TrustService
  relayClient: RelayClient
  delivery: Delivery
  discovery: Discovery
  moltEvents: MoltEvents
  moltMetrics: AgentMetrics
  moltStore: MoltStore
  moltMessages: MessageFactory
  moltPeers: PeerResolver
  moltRequests: RequestTracker
}

/**
 * What an application sends with: send() over Delivery with the outcome
 * shaped into a SendResult, request() matched to its reply, ping(), the
 * outbox views; and the node's metrics bound to the services they count.
 */
export class Messenger implements Startable {
  private readonly encoder = new TextEncoder()
  private listening = false

  constructor (private readonly components: MessengerComponents) {}

  start (): void {
    if (this.listening) return
    this.listening = true
    const { delivery, moltEvents: events, moltMetrics: metrics } = this.components
    delivery.addEventListener('outbox:delivered', ({ detail: { entries, route } }) => {
      for (const entry of entries) {
        metrics.sent(entry.op, route)
        events.dispatchEvent(new CustomEvent('outbox', { detail: { id: entry.id, peer: entry.peer, status: 'delivered' } }))
      }
    })
    delivery.addEventListener('outbox:stored', ({ detail: entries }) => {
      for (const entry of entries) events.dispatchEvent(new CustomEvent('outbox', { detail: { id: entry.id, peer: entry.peer, status: 'stored' } }))
    })
    delivery.addEventListener('outbox:dead', ({ detail: letters }) => {
      for (const letter of letters) {
        metrics.outboxDead.inc({ reason: letter.reason })
        events.dispatchEvent(new CustomEvent('dead-letter', { detail: letter }))
      }
    })
  }

  afterStart (): void {
    const { moltStore: store, discovery, relayClient, trust } = this.components
    this.components.moltMetrics.bind({
      peers: () => discovery.peers(),
      inboxMessages: () => store.inbox.size,
      reservedRelays: () => relayClient.relays().filter(relay => relay.reserved).length,
      outboxMessages: () => store.outbox.size,
      outboxBytes: () => store.outbox.bytes,
      trust: () => trust.stats()
    })
  }

  /** First of all: readers and waiters learn the node stops */
  beforeStop (): void {
    this.components.moltEvents.stop()
  }

  stop (): void {}

  async send (peer: PeerInput, init: MessageInit, options: SendOptions = {}): Promise<SendResult> {
    this.assertRunning()
    const { moltMetrics: metrics, moltPeers: peers } = this.components
    const delivery = options.delivery ?? DEFAULT_DELIVERY
    if (!DELIVERY_MODES.includes(delivery)) throw new InvalidParametersError(`delivery must be one of ${DELIVERY_MODES.join(', ')}`)
    if (options.priority !== undefined && !(PRIORITIES as readonly unknown[]).includes(options.priority)) throw new InvalidParametersError(`priority must be one of ${PRIORITIES.join(', ')}`)
    let result: SendResult
    try {
      const peerId = await peers.resolvePeer(peer, options).catch((err) => {
        // a peer we cannot dial now is still a recipient the outbox and mailboxes can serve
        const named = delivery === 'best-effort' ? undefined : namedPeer(peer)
        if (named === undefined) throw err
        return named
      })
      const message = this.components.moltMessages.build(peerId, withDelivery(init, delivery, options.receipt === true), options.sign)
      const priority = options.priority ?? (init.op === 'task' ? priorityOf(init.p?.priority) : undefined)
      const outcome = await this.components.delivery.send(peerId, message, delivery, { signal: options.signal, priority })
      result = {
        id: message.id,
        peer: peerId.toString(),
        delivered: outcome.status === 'delivered',
        delivery,
        ...outcome,
        ...(outcome.status !== 'delivered' ? { expires: message.exp } : {}),
        message
      }
    } catch (err) {
      metrics.sendFailed(err, options.signal)
      throw err
    }
    metrics.sendOutcomes.inc({ status: result.status, mode: delivery })
    if (result.delivered) this.components.trust.observe(result.peer, true)
    if (result.status === 'delivered') metrics.sent(init.op, result.route ?? 'direct')
    return result
  }

  async request (peer: PeerInput, init: MessageInit, options: RequestOptions = {}): Promise<MoltMessage> {
    this.assertRunning()
    const { moltMetrics: metrics, moltPeers: peers, trust } = this.components
    const started = performance.now()
    let peerId: PeerId
    try {
      peerId = await peers.resolvePeer(peer, options)
    } catch (err) {
      metrics.sendFailed(err, options.signal)
      throw err
    }
    const message = this.components.moltMessages.build(peerId, init, options.sign)
    const timeout = options.timeout ?? DEFAULT_REQUEST_TIMEOUT
    const pending = this.components.moltRequests.expect(message.id, peerId.toString())
    let acked = false
    const timer = setTimeout(() => {
      // say why: silence after the peer's ack means nothing there answered this op
      const why = acked
        ? `: the peer acknowledged it but sent no reply (nothing there answers "${message.op}" — no handler, no API client reading its messages — or it is still working). ` +
          'Ask its operator, wait longer (timeout), or only deliver it (send(), `molt send --no-wait`)'
        : ': the peer did not acknowledge it either (unreachable, or too busy)'
      pending.reject(new RequestTimeoutError(`no reply to ${message.op} ${message.id} from ${peerId} within ${timeout} ms${why}`))
    }, timeout)
    const onAbort = (): void => { pending.reject(options.signal?.reason) }
    options.signal?.addEventListener('abort', onAbort, { once: true })
    try {
      // a request is answered now or not at all: no outbox, no mailbox
      // connected (the usual case): no dial, so no dial deadline (two timers and a composite signal per request)
      const connected = peers.isConnected(peerId)
        ? Promise.resolve()
        : peers.connect(peerId, { signal: AbortSignal.any([AbortSignal.timeout(timeout), ...(options.signal != null ? [options.signal] : [])]) })
      const sent = connected
        .then(async () => this.components.speak.send(peerId, this.encoder.encode(JSON.stringify(message)), { ...options, request: true })).then(
          () => {
            acked = true
            metrics.sent(init.op, peers.routeTo(peerId).route)
          },
          (err) => {
            metrics.sendFailed(err, options.signal)
            throw err
          })
      // a reply proves the request arrived: it need not wait for the peer's ack, which follows
      // the peer's inbox write (a LevelDB stall there would otherwise sit in every request's tail)
      sent.catch(() => {})
      const answered = pending.reply.then(() => undefined, () => undefined)
      await Promise.race([sent, answered])
      // the peer's answer (or silence) is direct experience for the trust score
      const answer = await pending.reply.catch((err: Error) => {
        if (err instanceof RequestTimeoutError) trust.observe(peerId, false)
        throw err
      })
      trust.observe(peerId, answer.op !== 'error')
      metrics.requestDone(started)
      return answer
    } finally {
      clearTimeout(timer)
      options.signal?.removeEventListener('abort', onAbort)
      pending.release()
    }
  }

  /** MoltSpeak ping → pong round trip in ms */
  async ping (peer: PeerInput, options: { signal?: AbortSignal, timeout?: number } = {}): Promise<{ rtt: number, pong: MoltMessage }> {
    const start = performance.now()
    const peerId = await this.components.moltPeers.resolvePeer(peer, options)
    if (!this.components.moltMessages.speaksMolt(peerId.toString())) {
      throw new MoltSpeakError('E_CAPABILITY', `${peerId.toString()} listed no "${MOLT_EXTENSION}" in its hello: ping is a molt extension it does not speak`)
    }
    const p = pingPayload({}) as Record<string, unknown>
    const reply = await this.request(peerId, { op: 'ping', p }, options)
    if (reply.op !== 'pong' || reply.p.nonce !== p.nonce) {
      throw new MoltSpeakError('E_INVALID_PARAM', 'pong does not echo the ping nonce', { field: 'p.nonce' })
    }
    const rtt = performance.now() - start
    // every ping, not only the heartbeat's, is what `peers()` reports as the peer's rtt
    this.components.discovery.presence.seen(peerId.toString(), {
      rttMs: rtt,
      load: typeof reply.p.load === 'number' ? reply.p.load : undefined,
      queueDepth: typeof reply.p.queue_depth === 'number' ? reply.p.queue_depth : undefined
    })
    return { rtt, pong: reply }
  }

  /** Messages waiting in the outbox (undeliverable so far), in send order */
  outbox (options: { peer?: string } = {}): OutboxEntry[] {
    return this.components.moltStore.outbox.pending(options.peer)
  }

  /** Messages the outbox gave up on: expired before delivery, or refused by the recipient */
  deadLetters (): DeadLetter[] {
    return this.components.moltStore.outbox.deadLetters()
  }

  /** Retry a peer's outbox now instead of at its next backoff */
  async retryOutbox (peer: PeerInput): Promise<void> {
    const peerId = typeof peer === 'string' && !peer.startsWith('/') ? peerIdFromString(peer) : await this.components.moltPeers.resolvePeer(peer)
    this.components.delivery.retryNow(peerId.toString())
  }

  private assertRunning (): void {
    if (this.components.moltEvents.isStopped) throw new NotStartedError('the node is stopped')
  }
}

export function messenger (): (components: MessengerComponents) => Messenger {
  return (components) => new Messenger(components)
}
