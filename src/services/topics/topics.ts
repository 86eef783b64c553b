import type { KeyObject } from 'node:crypto'
import type { Logger, PeerId } from '@libp2p/interface'
import { TopicValidatorResult, type GossipSub, type Message } from '@libp2p/gossipsub'
import { createMessage, signMessage, type AgentRef, type MoltMessage } from '../../moltspeak/index.js'
import type { MessageInit } from '../../node/message-types.js'
import type { Database } from '../../storage/index.js'
import type { InboundMessage, Route } from '../speak/index.js'
import { ReplayWindow } from '../../moltspeak/replay-window.js'
import { RateLimiter } from '../trust/rate-limit.js'
import { TOPIC as TRUST_TOPIC } from '../trust/constants.js'
import * as c from './constants.js'
import { InvalidTopicError, TooManyTopicsError, TopicMessageError } from './errors.js'
import { decodeTopicMessage, topicRecipient } from './validate.js'

/** A message received on a topic, as the node's inbox takes it */
export interface TopicInbound extends InboundMessage {
  /** The topic's name (without the `molt/topic/` prefix) */
  topic: string
}

export interface TopicInfo {
  name: string
  /** The gossipsub topic, `molt/topic/<name>` */
  topic: string
  /** Peers known to have joined it */
  peers: string[]
}

export interface PublishResult {
  id: string
  topic: string
  /** Peers the message was sent to directly (mesh or fanout); 0 on a topic nobody else joined */
  recipients: number
  message: MoltMessage
}

export interface TopicStats {
  joined: number
  published: number
  delivered: number
  /** Messages refused, by reason (size, schema, unsigned, publisher, signature, topic, rate, stale) */
  refused: Record<string, number>
}

/** Team topics over gossipsub (protocols/topics.md) */
export interface TopicService {
  /** Subscribe to `molt/topic/<name>`; its messages reach the inbox with `topic: name`. Kept across restarts */
  join(name: string): Promise<TopicInfo>
  /** Unsubscribe: nothing more of it reaches the inbox */
  leave(name: string): Promise<void>
  /** Sign a MoltSpeak message addressed to the topic and publish it (joining is not needed to publish) */
  publish(name: string, message: Omit<MessageInit, 'to'>): Promise<PublishResult>
  /** Joined topics, by name */
  list(): TopicInfo[]
  joined(name: string): boolean
  stats(): TopicStats
}

export interface TopicComponents {
  pubsub: GossipSub
  /** This node's PeerId: the publisher of what it publishes */
  self: PeerId
  db: Database
  signingKey: KeyObject
  agent: () => AgentRef
  /** Hand accepted messages to the node's inbox (node.receive) */
  deliver: (batch: TopicInbound[]) => Promise<void>
  /** How messages from `peer` travel now (for the inbox entry's `route`) */
  routeTo: (peer: PeerId) => Route
  /** The inbox policy: false drops a publisher's messages here (they are still forwarded: the mesh is not this node's to censor) */
  accept?: (peer: PeerId) => boolean
  log: Logger
}

/** The gossipsub topic of a team topic name */
export function topicOf (name: string): string {
  if (typeof name !== 'string' || !c.TOPIC_NAME_PATTERN.test(name)) throw new InvalidTopicError(`topic name must match ${String(c.TOPIC_NAME_PATTERN)}`)
  return c.TOPIC_PREFIX + name
}

/**
 * Every message is validated before gossipsub stores or forwards it (a
 * refused one is `Reject`: its sender's gossip score drops as on the trust
 * topic), then delivered from the `message` event, which gossipsub fires only
 * for subscribed topics: leaving stops delivery at once.
 */
class DefaultTopicService implements TopicService {
  private readonly names = new Set<string>()
  private readonly table: ReturnType<Database['sublevel']>
  private readonly limiter = new RateLimiter(c.PUBLISHER_BURST, c.PUBLISHER_RATE_PER_MINUTE, c.MAX_RATE_BUCKETS)
  private readonly replay = new ReplayWindow(c.MAX_TOPIC_MESSAGE_AGE, c.MAX_REMEMBERED_IDS)
  /** Decoded in the validator, delivered from the `message` event (the same Message object) */
  private readonly accepted = new WeakMap<Message, { message: MoltMessage, json: string }>()
  private readonly counters = { published: 0, delivered: 0 }
  private readonly refused: Record<string, number> = {}

  constructor (private readonly components: TopicComponents) {
    this.table = components.db.sublevel('topics', { keyEncoding: 'utf8', valueEncoding: 'utf8' })
  }

  /** Rejoin the topics joined before a restart; start delivering */
  async start (): Promise<void> {
    this.components.pubsub.addEventListener('message', this.onMessage)
    for await (const name of this.table.keys()) {
      try {
        this.subscribe(name as string)
      } catch (err) {
        this.components.log('could not rejoin topic %s - %e', name, err)
      }
    }
  }

  stop (): void {
    this.components.pubsub.removeEventListener('message', this.onMessage)
    for (const name of this.names) {
      try {
        this.components.pubsub.unsubscribe(topicOf(name))
      } catch {}
    }
  }

  async join (name: string): Promise<TopicInfo> {
    const topic = topicOf(name)
    if (!this.names.has(name) && this.names.size >= c.MAX_TOPICS) throw new TooManyTopicsError(`this node has joined ${c.MAX_TOPICS} topics`)
    await this.table.put(name, '1')
    this.subscribe(name)
    return this.info(name, topic)
  }

  async leave (name: string): Promise<void> {
    const topic = topicOf(name)
    this.names.delete(name)
    this.components.pubsub.unsubscribe(topic)
    this.components.pubsub.topicValidators.delete(topic)
    await this.table.del(name)
  }

  async publish (name: string, init: Omit<MessageInit, 'to'>): Promise<PublishResult> {
    const topic = topicOf(name)
    const { id, ...rest } = init as MessageInit
    const message = signMessage(createMessage({ ...rest, ...(id !== undefined ? { id } : {}), from: this.components.agent(), to: topicRecipient(topic) }), this.components.signingKey)
    const json = JSON.stringify(message)
    // the same checks every receiver makes: a message they would refuse (and penalise us for) never leaves
    decodeTopicMessage(new TextEncoder().encode(json), this.components.self, topic)
    const { recipients } = await this.components.pubsub.publish(topic, new TextEncoder().encode(json))
    this.counters.published++
    return { id: message.id, topic: name, recipients: recipients.length, message }
  }

  list (): TopicInfo[] {
    return [...this.names].sort().map(name => this.info(name, topicOf(name)))
  }

  joined (name: string): boolean {
    return this.names.has(name)
  }

  stats (): TopicStats {
    return { joined: this.names.size, ...this.counters, refused: { ...this.refused } }
  }

  private subscribe (name: string): void {
    const topic = topicOf(name)
    const pubsub = this.components.pubsub
    // scored with the trust topic's own parameters (an invalid message costs the same there and here);
    // without parameters gossipsub would not count invalid messages on this topic at all
    const scored = (pubsub as unknown as { score: { params: { topics: Record<string, unknown> } } }).score.params.topics
    if (scored[TRUST_TOPIC] !== undefined) scored[topic] ??= { ...scored[TRUST_TOPIC] as object }
    else this.components.log('the trust topic is not scored: invalid messages on %s cost their sender nothing', topic)
    pubsub.topicValidators.set(topic, (peer, msg) => this.validate(peer, msg, topic))
    pubsub.subscribe(topic)
    this.names.add(name)
  }

  private info (name: string, topic: string): TopicInfo {
    return { name, topic, peers: this.components.pubsub.getSubscribers(topic).map(p => p.toString()) }
  }

  /** The topic validator: runs before gossipsub stores or forwards a message */
  private validate (peer: PeerId, msg: Message, topic: string): TopicValidatorResult {
    if (msg.type !== 'signed') return this.refuse('unsigned', new TopicMessageError('unsigned gossip message', 'unsigned'))
    let decoded: { message: MoltMessage, json: string }
    try {
      decoded = decodeTopicMessage(msg.data, msg.from, topic)
    } catch (err: any) {
      return this.refuse(err instanceof TopicMessageError ? err.reason : 'schema', err)
    }
    const { message } = decoded
    const now = Date.now()
    // late or early by the clock is nobody's proven fault: dropped without a penalty
    if (message.ts > now + c.MAX_CLOCK_SKEW || message.ts < now - c.MAX_TOPIC_MESSAGE_AGE || (message.exp != null && message.exp < now)) {
      this.count('stale')
      return TopicValidatorResult.Ignore
    }
    const publisher = msg.from.toString()
    if (this.replay.checkAndRemember(`${topic}/${publisher}/${message.id}`, message.ts, now)) return TopicValidatorResult.Ignore
    if (!this.limiter.take(publisher, now)) {
      this.count('rate')
      // the flooder itself is penalised; a forwarder whose view of the rate differs is not
      return peer.toString() === publisher ? TopicValidatorResult.Reject : TopicValidatorResult.Ignore
    }
    this.accepted.set(msg, decoded)
    return TopicValidatorResult.Accept
  }

  private readonly onMessage = (evt: CustomEvent<Message>): void => {
    const msg = evt.detail
    const decoded = this.accepted.get(msg)
    if (decoded === undefined || msg.type !== 'signed' || !msg.topic.startsWith(c.TOPIC_PREFIX)) return
    const name = msg.topic.slice(c.TOPIC_PREFIX.length)
    if (!this.names.has(name)) return
    if (this.components.accept?.(msg.from) === false) {
      this.count('policy')
      return
    }
    this.counters.delivered++
    this.components.deliver([{ ...decoded, peer: msg.from, route: this.components.routeTo(msg.from), topic: name }])
      .catch((err: Error) => { this.components.log.error('could not keep topic message %s - %e', decoded.message.id, err) })
  }

  private refuse (reason: string, err: Error): TopicValidatorResult {
    this.count(reason)
    this.components.log('refused a topic message - %e', err)
    return TopicValidatorResult.Reject
  }

  private count (reason: string): void {
    this.refused[reason] = (this.refused[reason] ?? 0) + 1
  }
}

/** The topic service with the topics joined before a restart joined again */
export async function createTopicService (components: TopicComponents): Promise<TopicService & { stop: () => void }> {
  const service = new DefaultTopicService(components)
  await service.start()
  return service
}
