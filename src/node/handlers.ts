import { loadavg, cpus } from 'node:os'
import type { ComponentLogger, Logger, PeerId } from '@libp2p/interface'
import {
  MoltSpeakError, errorPayload, pong, hello as helloPayload, replyClassification, CLASSIFICATIONS, MOLT_EXTENSION,
  type MoltMessage, type Op
} from '../moltspeak/index.js'
import type { Speak, InboundMessage } from '../services/speak/index.js'
import type { CardService } from '../services/card/index.js'
import type { Discovery } from '../discovery/index.js'
import type { MoltEvents } from './events.js'
import { isHousekeeping, moltExt, type MessageFactory } from './messages.js'
import type { Messenger } from './messenger.js'
import type { RequestTracker } from './requests.js'
import type { Receipts } from './receipts.js'
import { DISCOVER_ANSWER_DEFAULT, DISCOVER_ANSWER_MAX, REQUEST_OPS } from './constants.js'
import type { MessageHandler, MessageInit, ReceivedMessage, SendOptions } from './types.js'

export interface HandlerRegistryInit {
  /**
   * A request nothing here answers: `keep` it unanswered, or `refuse` it at
   * once with E_CAPABILITY_UNKNOWN (see MoltNodeOptions.unhandledRequests). @default 'keep'
   */
  unhandledRequests?: 'keep' | 'refuse'
}

export interface HandlerRegistryComponents {
  logger: ComponentLogger
  speak: Speak
  cards: CardService
  discovery: Discovery
  molt: Messenger
  moltEvents: MoltEvents
  moltMessages: MessageFactory
  moltRequests: RequestTracker
  moltReceipts: Receipts
}

/** Something that answers some requests itself, outside the registry (the task service) */
export interface Responder {
  handles(message: MoltMessage): boolean
}

/**
 * The handlers of ops (the application's, and the built-in `ping`, `hello`
 * and `discover`) and the dispatch of every received message: receipts to
 * Receipts, replies to their requests, events to listeners, requests to their
 * handler, whose return value is sent back as the reply.
 */
export class HandlerRegistry {
  private readonly handlers = new Map<Op, MessageHandler>()
  private readonly responders = new Set<Responder>()
  private readonly log: Logger
  unhandledRequests: 'keep' | 'refuse'

  constructor (private readonly components: HandlerRegistryComponents, init: HandlerRegistryInit = {}) {
    this.log = components.logger.forComponent('molt:node')
    this.unhandledRequests = init.unhandledRequests ?? 'keep'
    this.handlers.set('ping', (message) => ({
      reply: {
        op: 'pong',
        p: pong({
          nonce: String(message.p.nonce ?? ''),
          load: Math.min(1, loadavg()[0] / cpus().length),
          queue_depth: this.components.speak.stats().inFlight
        }) as Record<string, unknown>
      }
    }))
    // answer a `hello` with ours, listing the molt extensions (a hello that answers one gets no answer: no loop)
    this.handlers.set('hello', (message) => message.re != null
      ? undefined
      : {
          reply: {
            op: 'hello',
            p: helloPayload({
              capabilities: this.components.cards.own().capabilities.map(c => c.name),
              extensions: [MOLT_EXTENSION],
              supported_cls: [...CLASSIFICATIONS]
            }) as Record<string, unknown>
          }
        })
    this.handlers.set('discover', (message) => this.answerDiscover(message))
  }

  handle (op: Op, handler: MessageHandler): void {
    this.handlers.set(op, handler)
  }

  unhandle (op: Op): void {
    this.handlers.delete(op)
  }

  /** `responder` answers the requests it handles(): they are not refused as unhandled */
  addResponder (responder: Responder): void {
    this.responders.add(responder)
  }

  dispatch (entry: ReceivedMessage, item: InboundMessage): void {
    const { message } = entry
    const { moltEvents: events } = this.components
    if (typeof moltExt(message)?.receipt_for === 'string') {
      this.components.moltReceipts.accept(entry)
      return
    }
    this.components.moltRequests.settle(message, entry.peer)
    if (message.op === 'hello') this.components.moltMessages.noteHello(entry.peer, message)
    if (entry.cursor === 0) events.dispatchEvent(new CustomEvent('housekeeping', { detail: entry }))
    else if (events.hasMessageListeners()) events.dispatchEvent(new CustomEvent('message', { detail: entry }))
    const handler = this.handlers.get(message.op)
    if (handler == null) {
      if (this.unhandledRequests === 'refuse' && message.re == null && REQUEST_OPS.has(message.op) && !events.hasReader() && !this.answeredElsewhere(message) && entry.topic === undefined) {
        this.refuseUnhandled(item.peer, message)
      }
      return
    }
    // a heartbeat's pong (or error) is worth something only while its ping waits: not queued for a requester
    // that left (a one-off `molt ping` would otherwise leave a pong in the outbox, retried for days)
    const replyOptions: SendOptions | undefined = isHousekeeping(message) ? { delivery: 'best-effort' } : undefined
    Promise.resolve()
      .then(async () => handler(message, { peer: item.peer, route: item.route, entry }))
      .then(async (result) => {
        if (result == null) return
        const reply = 'reply' in result && typeof result.reply === 'object' ? result.reply as MessageInit : { op: 'respond' as const, p: result }
        await this.sendReply(item.peer, message, reply, replyOptions)
      }, async (err: any) => {
        const code = err instanceof MoltSpeakError ? err.code : 'E_TASK_FAILED'
        await this.sendReply(item.peer, message, { op: 'error', p: errorPayload(code, err.message ?? String(err)) as unknown as Record<string, unknown> }, replyOptions)
      })
      .catch((err: Error) => {
        // the requester's timeout reports an undeliverable reply to the app there
        this.log('could not deliver the reply to %s %s from %p - %e', message.op, message.id, item.peer, err)
      })
  }

  private answeredElsewhere (message: MoltMessage): boolean {
    for (const responder of this.responders) if (responder.handles(message)) return true
    return false
  }

  /** Answer `discover` from what this node knows (itself included); no DHT walk on a peer's behalf */
  private answerDiscover (message: MoltMessage): Record<string, unknown> {
    const capability = typeof message.p.capability === 'string' ? message.p.capability : undefined
    if (capability == null) throw new MoltSpeakError('E_MISSING_FIELD', 'discover needs p.capability', { field: 'p.capability' })
    const limit = Number.isInteger(message.p.limit) ? Math.min(Number(message.p.limit), DISCOVER_ANSWER_MAX) : DISCOVER_ANSWER_DEFAULT
    const own = this.components.cards.own()
    const cardsFound = [
      ...(own.capabilities.some(c => c.name === capability) ? [own] : []),
      ...this.components.discovery.localMatches(capability).map(a => a.card)
    ].slice(0, limit)
    return {
      status: 'success',
      total: cardsFound.length,
      agents: cardsFound.map(card => ({
        agent_id: card.name, org: card.org, name: card.name, public_key: card.key, peer_id: card.peer_id,
        capabilities: card.capabilities.map(c => c.name), endpoint: { addresses: card.addresses }, card
      }))
    }
  }

  /** A request nothing here answers (unhandledRequests 'refuse'): say so now rather than let the requester wait */
  private refuseUnhandled (peer: PeerId, request: MoltMessage): void {
    const p = errorPayload('E_CAPABILITY_UNKNOWN',
      `nothing on this agent answers "${request.op}" (no handler, no API client reading its messages): the message is kept in its inbox, unanswered. ` +
      `Its operator can answer ${request.op} with an SDK handler (node.handle) or a local API client on /v1/stream (protocols/speak.md)`,
      { field: 'op', context: { op: request.op } })
    // best-effort: a requester that still waits is connected now; one that sent and left needs no queued error
    this.sendReply(peer, request, { op: 'error', p: p as unknown as Record<string, unknown> }, { delivery: 'best-effort' }).catch((err: Error) => {
      this.log('could not refuse the unanswered %s %s from %p - %e', request.op, request.id, peer, err)
    })
  }

  private async sendReply (peer: PeerId, request: MoltMessage, init: MessageInit, options?: SendOptions): Promise<void> {
    if (this.components.moltEvents.isStopped) return
    const messages = this.components.moltMessages
    const p = init.op === 'error' && init.p != null ? messages.errorFor(peer.toString(), init.p) : init.p
    await this.components.molt.send(peer, {
      ...init,
      p,
      re: request.id,
      to: { agent: request.from.agent, org: request.from.org },
      // never `pii` without our own pii_meta, never `sec` across orgs: the reply would be invalid
      cls: replyClassification(request, init, messages.agent.org)
    }, options)
  }
}

export function handlerRegistry (init: HandlerRegistryInit = {}): (components: HandlerRegistryComponents) => HandlerRegistry {
  return (components) => new HandlerRegistry(components, init)
}
