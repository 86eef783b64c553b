import type { PeerId } from '@libp2p/interface'
import { TopicValidatorResult, type GossipSub, type Message } from '@libp2p/gossipsub'
import { decodeAttestation, type Attestation, type VerifiedAttestation } from './attestation.js'
import { AttestationExpiredError, InvalidAttestationError, IssuerRateLimitError, TrustStoreFullError } from './errors.js'
import type { RecordIntake } from './intake.js'
import type { RateLimiter } from './rate-limit.js'
import type { TrustStore } from './store.js'
import * as c from './constants.js'
import { parseBoundedJson } from '../../json/index.js'

export interface TrustGossipInit {
  topic: string
  store: TrustStore
  intake: RecordIntake
  /** Per-issuer token buckets (ISSUER_BURST, ISSUER_RATE_PER_MINUTE) */
  limiter: RateLimiter
}

/**
 * Attestations on the gossipsub topic (protocols/trust.md, "Gossip"): every
 * record is validated before gossipsub stores or forwards it; a record that
 * breaks the rules is `Reject`ed, which costs its sender gossip score
 */
export class TrustGossip {
  readonly topic: string

  constructor (private readonly pubsub: GossipSub, private readonly init: TrustGossipInit) {
    this.topic = init.topic
  }

  /** gossipsub only subscribes once started, which is after every service's start() */
  start (): void {
    subscribeValidated(this.pubsub, this.topic, async (peer, msg) => this.validate(peer, msg))
  }

  stop (): void {
    unsubscribeValidated(this.pubsub, this.topic)
  }

  async publish (verified: VerifiedAttestation): Promise<void> {
    await publishOnce(this.pubsub, this.topic, verified.bytes)
  }

  /** The gossipsub score this node gives `peer` (negative after invalid messages) */
  score (peer: PeerId | string): number {
    return (this.pubsub as unknown as { getScore(id: string): number }).getScore(peer.toString())
  }

  /** The topic validator: every record is checked before it is stored or forwarded */
  async validate (peer: PeerId, msg: Message): Promise<TopicValidatorResult> {
    const { intake, store, limiter } = this.init
    if (msg.type !== 'signed') return this.refuse(new InvalidAttestationError('unsigned gossip message', 'from'))
    let verified: VerifiedAttestation
    try {
      verified = intake.check(decodeAttestation(msg.data))
    } catch (err: any) {
      // a record expiring while it travels is nobody's fault: drop it without a penalty
      if (err instanceof AttestationExpiredError) {
        const record = tryParse(msg.data)
        if (record !== undefined && Date.now() - record.expires < c.MAX_CLOCK_SKEW) {
          intake.reject(err)
          return TopicValidatorResult.Ignore
        }
      }
      return this.refuse(err)
    }
    const { record, issuer } = verified
    // the issuer publishes its own records: a forwarded replay of someone else's is refused
    if (msg.from.toString() !== issuer) {
      return this.refuse(new InvalidAttestationError(`published by ${msg.from}, issued by ${issuer}`, 'issuer'))
    }
    if (store.has(record.id)) return TopicValidatorResult.Ignore
    if (!limiter.take(issuer)) {
      intake.reject(new IssuerRateLimitError(`${issuer} is over its rate`))
      // the flooder itself is penalised; a forwarder whose view of the rate differs is not
      return peer.toString() === issuer ? TopicValidatorResult.Reject : TopicValidatorResult.Ignore
    }
    try {
      await intake.keep([verified])
    } catch (err: any) {
      intake.reject(err)
      return err instanceof TrustStoreFullError ? TopicValidatorResult.Ignore : TopicValidatorResult.Reject
    }
    return TopicValidatorResult.Accept
  }

  private refuse (err: Error): TopicValidatorResult {
    this.init.intake.reject(err)
    return TopicValidatorResult.Reject
  }
}

/** Subscribe to `topic` with every message checked by `validator` before it is kept or forwarded */
export function subscribeValidated (pubsub: GossipSub, topic: string, validator: (peer: PeerId, msg: Message) => Promise<TopicValidatorResult>): void {
  pubsub.topicValidators.set(topic, validator)
  pubsub.subscribe(topic)
}

export function unsubscribeValidated (pubsub: GossipSub, topic: string): void {
  try {
    pubsub.topicValidators.delete(topic)
    pubsub.unsubscribe(topic)
  } catch {}
}

/** Publish a record; gossipsub refuses messages it has seen (its own included): a known record is not news */
export async function publishOnce (pubsub: GossipSub, topic: string, data: Uint8Array): Promise<void> {
  await pubsub.publish(topic, data).catch((err: Error) => {
    if (!err.message.includes('Duplicate')) throw err
  })
}

function tryParse (data: Uint8Array): Attestation | undefined {
  try {
    return parseBoundedJson(data) as Attestation
  } catch {
    return undefined
  }
}
