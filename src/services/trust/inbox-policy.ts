import type { PeerId } from '@libp2p/interface'
import type { MoltMessage } from '../../moltspeak/index.js'
import type { TrustModel } from './model/index.js'
import type { HeldMessage, InboxPolicy } from './types.js'
import * as c from './constants.js'

export type InboxDecision = 'accept' | 'hold' | 'refuse'

interface Verdict {
  decision: InboxDecision
  score: number
}

export interface InboxPolicyInit {
  /** The policy; none means every sender is accepted */
  policy?: InboxPolicy
  /** The current trust model (the service caches it: the same object until the records change) */
  model: () => TrustModel
  /** Messages held; beyond it the oldest is dropped. @default MAX_HELD */
  maxHeld?: number
  /** @default Date.now */
  now?: () => number
}

/**
 * What the inbox does with a sender's messages (accept, hold, refuse) by this
 * node's score of it, and the queue of held messages. Called per inbound
 * message: the verdict is computed once per sender per model.
 */
export class InboxPolicyQueue {
  private readonly heldMessages: HeldMessage[] = []
  private decisions: { model?: TrustModel, bySender: Map<string, Verdict> } = { bySender: new Map() }
  private readonly maxHeld: number
  private readonly now: () => number

  constructor (private readonly init: InboxPolicyInit) {
    this.maxHeld = init.maxHeld ?? c.MAX_HELD
    this.now = init.now ?? Date.now
  }

  /** What the policy does with a message from `peer` (always `accept` without a policy) */
  decision (peer: PeerId | string): InboxDecision {
    const policy = this.init.policy
    if (policy === undefined) return 'accept'
    return this.verdict(policy, peer.toString()).decision
  }

  /** Keep a message the policy holds (at most `maxHeld`, oldest dropped) */
  hold (peer: PeerId | string, message: MoltMessage): void {
    const policy = this.init.policy
    const key = peer.toString()
    // the score decision() just computed for this sender (a flood of held messages costs no more scoring)
    const score = policy !== undefined ? this.verdict(policy, key).score : this.init.model().score(key).score
    this.heldMessages.push({ peer: key, receivedAt: this.now(), score, message })
    if (this.heldMessages.length > this.maxHeld) this.heldMessages.shift()
  }

  /** Held messages, oldest first */
  held (): HeldMessage[] {
    return [...this.heldMessages]
  }

  /** Take a held message out of the hold (returns it, or undefined) */
  release (id: string): HeldMessage | undefined {
    const i = this.heldMessages.findIndex(h => h.message.id === id)
    return i === -1 ? undefined : this.heldMessages.splice(i, 1)[0]
  }

  /** The verdict on a sender and the score behind it; the cache is cleared when the model changed */
  private verdict (policy: InboxPolicy, key: string): Verdict {
    const model = this.init.model()
    if (this.decisions.model !== model) this.decisions = { model, bySender: new Map() }
    let verdict = this.decisions.bySender.get(key)
    if (verdict === undefined) {
      const { score } = model.score(key, policy.domain !== undefined ? { domain: policy.domain } : {})
      verdict = { decision: score < policy.threshold ? policy.action : 'accept', score }
      // a flood of distinct senders cannot grow the cache without bound
      if (this.decisions.bySender.size >= c.MAX_INBOX_DECISIONS) this.decisions.bySender.clear()
      this.decisions.bySender.set(key, verdict)
    }
    return verdict
  }
}
