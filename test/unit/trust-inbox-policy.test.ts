/** The inbox policy (inbox-policy.ts) over a stubbed trust model: verdicts, their cache, the hold queue */
import { describe, it, expect } from 'vitest'
import { InboxPolicyQueue } from '../../src/services/trust/inbox-policy.js'
import type { TrustModel } from '../../src/services/trust/model/index.js'
import type { MoltMessage } from '../../src/moltspeak/index.js'

/** A model that scores from a table and counts how often it is asked */
function stubModel (scores: Record<string, number>): TrustModel & { calls: Array<[string, unknown]> } {
  const calls: Array<[string, unknown]> = []
  return { calls, score: (peer: string, options: unknown) => { calls.push([peer, options]); return { score: scores[peer] ?? 0.5 } } } as any
}

const message = (id: string): MoltMessage => ({ id, op: 'query' } as unknown as MoltMessage)

describe('inbox policy', () => {
  it('without a policy every sender is accepted and nothing is scored', () => {
    const model = stubModel({ low: 0 })
    const inbox = new InboxPolicyQueue({ model: () => model })
    expect(inbox.decision('low')).toBe('accept')
    expect(model.calls).toHaveLength(0)
  })

  it('senders below the threshold get the action, the rest are accepted; the domain is passed on', () => {
    const model = stubModel({ low: 0.1, high: 0.9 })
    const inbox = new InboxPolicyQueue({ policy: { threshold: 0.4, action: 'refuse', domain: 'translate.text' }, model: () => model })
    expect(inbox.decision('low')).toBe('refuse')
    expect(inbox.decision('high')).toBe('accept')
    expect(model.calls[0]).toEqual(['low', { domain: 'translate.text' }])
    const hold = new InboxPolicyQueue({ policy: { threshold: 0.4, action: 'hold' }, model: () => model })
    expect(hold.decision('low')).toBe('hold')
  })

  it('one score per sender per model: a flood of messages costs one scoring, a new model scores again', () => {
    let model = stubModel({ low: 0.1 })
    const inbox = new InboxPolicyQueue({ policy: { threshold: 0.4, action: 'hold' }, model: () => model })
    for (let i = 0; i < 100; i++) {
      expect(inbox.decision('low')).toBe('hold')
      inbox.hold('low', message(`m${i}`))
    }
    expect(model.calls).toHaveLength(1)
    model = stubModel({ low: 0.9 })
    expect(inbox.decision('low')).toBe('accept')
    expect(model.calls).toHaveLength(1)
  })

  it('holds at most maxHeld (oldest dropped), with the score; release takes one out', () => {
    const model = stubModel({ low: 0.2 })
    let now = 1000
    const inbox = new InboxPolicyQueue({ policy: { threshold: 0.4, action: 'hold' }, model: () => model, maxHeld: 3, now: () => now++ })
    for (const id of ['a', 'b', 'c', 'd']) inbox.hold('low', message(id))
    expect(inbox.held().map(h => h.message.id)).toEqual(['b', 'c', 'd'])
    expect(inbox.held()[0]).toMatchObject({ peer: 'low', score: 0.2, receivedAt: 1001 })
    expect(inbox.release('c')?.message.id).toBe('c')
    expect(inbox.release('c')).toBeUndefined()
    expect(inbox.held().map(h => h.message.id)).toEqual(['b', 'd'])
    // held() is a copy: changing it does not change the queue
    inbox.held().pop()
    expect(inbox.held()).toHaveLength(2)
  })

  it('without a policy a held message carries the sender\'s plain score', () => {
    const model = stubModel({ p: 0.7 })
    const inbox = new InboxPolicyQueue({ model: () => model })
    inbox.hold('p', message('x'))
    expect(inbox.held()[0].score).toBe(0.7)
  })
})
