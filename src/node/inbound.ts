import type { InboundMessage } from '../services/speak/index.js'
import type { TopicInbound } from '../services/topics/index.js'
import type { TrustService } from '../services/trust/index.js'
import type { CardService } from '../services/card/index.js'
import type { Discovery } from '../discovery/index.js'
import type { AgentMetrics } from '../metrics/index.js'
import { REPLAY_WINDOW } from '../services/speak/constants.js'
import type { MoltEvents } from './events.js'
import type { MoltStore } from './store.js'
import type { AppendOptions } from '../inbox/index.js'
import { deliveryOf, isHousekeeping, moltExt } from './messages.js'
import type { HandlerRegistry } from './handlers.js'
import type { Receipts } from './receipts.js'
import { MAX_UNSTORED } from './constants.js'

export interface InboundPipelineComponents {
  trust: TrustService
  cards: CardService
  discovery: Discovery
  moltEvents: MoltEvents
  moltMetrics: AgentMetrics
  moltStore: MoltStore
  moltHandlers: HandlerRegistry
  moltReceipts: Receipts
}

/**
 * Where every received message goes, by stream or from a mailbox: the trust
 * inbox policy (hold), the inbox append, presence, dispatch to handlers and
 * listeners at once, and — once the inbox write is durable — the `stored`
 * event and receipts. The returned promise is what speak's acknowledgement
 * (or the mailbox fetch's) waits for.
 */
export class InboundPipeline {
  /**
   * `peer/id` of messages dispatched whose inbox write then failed (disk full):
   * when the sender retries them they are stored, not dispatched again.
   * Oldest forgotten beyond MAX_UNSTORED (such a retry is then dispatched again).
   */
  private readonly unstored = new Set<string>()

  constructor (private readonly components: InboundPipelineComponents) {}

  /**
   * speak's receive hook. Dispatch (handlers, request replies, events) happens
   * at once; the returned promise — after which speak acknowledges — waits for
   * the inbox write (`deferrable`: nobody waits on that acknowledgement, so
   * the write may wait to share a LevelDB batch with the next ones).
   */
  async receive (batch: Array<InboundMessage | TopicInbound>, options?: AppendOptions): Promise<void> {
    const { trust, moltStore: store, moltMetrics: metrics } = this.components
    batch = batch.filter(item => trust.inboxDecision(item.peer) !== 'hold' || (trust.hold(item.peer, item.message), false))
    if (batch.length === 0) return
    const receivedAt = Date.now()
    // heartbeat ping/pong are answered and matched below but never stored: they would push real messages out of the bounded inbox
    const kept = batch.filter(item => !isHousekeeping(item.message))
    const { cursors, stored } = kept.length === 0 ? { cursors: [], stored: Promise.resolve() } : store.inbox.append(kept.map(item => ({
      json: item.json,
      peer: item.peer.toString(),
      route: item.route,
      receivedAt,
      ...('topic' in item ? { topic: item.topic } : {}),
      // exactly-once ids, and every mailbox one (a relay can serve a box again), are remembered across restarts
      ...(deliveryOf(item.message) === 'exactly-once' || item.route === 'mailbox'
        ? { id: item.message.id, dedupUntil: Math.max(item.message.exp ?? 0, item.message.ts + REPLAY_WINDOW) }
        : {})
    })), options)
    const cursorOf = new Map(kept.map((item, i) => [item, cursors[i]]))
    for (let i = 0; i < batch.length; i++) {
      const item = batch[i]
      if (i === 0 || batch[i - 1].peer !== item.peer) this.components.discovery.presence.seen(item.peer.toString())
      const cursor = cursorOf.get(item)
      if (cursor !== undefined && this.unstored.size > 0 && this.unstored.delete(`${item.peer.toString()}/${item.message.id}`)) continue
      metrics.received(item.message.op, item.route)
      // cursor 0: housekeeping, not in the inbox
      this.components.moltHandlers.dispatch({ cursor: cursor ?? 0, receivedAt, peer: item.peer.toString(), route: item.route, ...('topic' in item ? { topic: item.topic } : {}), message: item.message, ...this.orgFlag(item) }, item)
    }
    try {
      await stored
    } catch (err) {
      // not stored, so not acknowledged (speak REJECTs E_INTERNAL, a mailbox fetch is not acked): the sender
      // retries with the same ids, which must then be taken as new, not acked as duplicates of what was never
      // kept (test/faults/disk-full.test.ts); they were dispatched already, so they are only stored then
      for (const item of kept) {
        const key = `${item.peer.toString()}/${item.message.id}`
        store.replay.forget(key)
        this.unstored.add(key)
        if (this.unstored.size > MAX_UNSTORED) this.unstored.delete(this.unstored.values().next().value as string)
      }
      throw err
    }
    if (kept.length > 0) this.components.moltEvents.dispatchEvent(new Event('stored'))
    for (const item of kept) {
      // a topic message is not acknowledged by each member (it would make every publish a flood back)
      if (moltExt(item.message)?.receipt === true && !('topic' in item)) this.components.moltReceipts.send(item, receivedAt)
    }
  }

  /**
   * `org_verified` for a message claiming `from.org`: whether the sender's
   * cached card carries a certificate from a trusted organisation of that name
   * (no cached card: false). Flagged, not refused (protocols/identity.md)
   */
  private orgFlag (item: InboundMessage): { org_verified?: boolean } {
    const org = item.message.from?.org
    if (typeof org !== 'string' || org === '') return {}
    const { cards } = this.components
    const card = cards.cached(item.peer)
    return { org_verified: card !== undefined && cards.verdict(card, org).verified }
  }
}

export function inboundPipeline (): (components: InboundPipelineComponents) => InboundPipeline {
  return (components) => new InboundPipeline(components)
}
