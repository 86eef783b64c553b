import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { TestNetwork } from '../support/nodes.js'
import { eventually } from '../support/eventually.js'
import { TaskClaimRefusedError, type MoltNode, type MoltMessage } from '../../src/index.js'

const CLAIMANTS = 10
const ROUNDS = 100
/** Rounds in flight at once (each its own task): keeps the run short without changing what each round checks */
const PARALLEL = 10
/** ms a claim may wait for its decision before the test gives up: 100 claims in flight on a busy 2-core machine outlast the 30 s default */
const CLAIM_BACKSTOP = 300_000

describe('"first agent wins" claims', () => {
  let net: TestNetwork
  let boss: MoltNode
  let claimants: MoltNode[]

  beforeAll(async () => {
    net = new TestNetwork()
    // receipts off here: the arbitration is under test, and they double the traffic; no DHT or
    // presence heartbeat either (every peer is introduced by address): their upkeep is CPU the
    // claims would wait for on a busy machine
    const options = { tasks: { receipts: false }, dht: { enabled: false }, heartbeatInterval: 0 }
    boss = await net.node(options)
    claimants = []
    for (let i = 0; i < CLAIMANTS; i++) claimants.push(await net.node(options))
    await net.introduce()
  }, 180_000)
  afterAll(async () => { await net.cleanup() })

  async function round (taskId: string): Promise<void> {
    await boss.tasks.offer(claimants.map(c => c.peerId), { id: taskId, type: 'race' })
    await eventually(() => claimants.every(c => c.tasks.get(taskId) != null), CLAIM_BACKSTOP, `offers of ${taskId}`, 10)
    // the claim's own deadline is a backstop: a round ends on the offerer's grant and refusals
    const outcomes = await Promise.allSettled(claimants.map(async c => c.tasks.claim(taskId, { timeout: CLAIM_BACKSTOP })))
    const winners = outcomes.flatMap((o, i) => o.status === 'fulfilled' ? [i] : [])
    expect(winners, `winners of ${taskId}`).toHaveLength(1)
    for (const outcome of outcomes) {
      if (outcome.status === 'rejected') {
        expect(outcome.reason).toBeInstanceOf(TaskClaimRefusedError)
        expect(outcome.reason.code).toBe('E_TASK_CLAIMED')
      }
    }
    const winner = claimants[winners[0]]
    expect(boss.tasks.get(taskId)).toMatchObject({ state: 'claimed', worker: winner.peerId.toString() })
    // every loser's own record says so
    for (const [i, c] of claimants.entries()) {
      expect(c.tasks.get(taskId)?.state).toBe(i === winners[0] ? 'claimed' : 'refused')
    }
  }

  it(`grants each task to exactly one of ${CLAIMANTS} racing claimants, ${ROUNDS} times`, async () => {
    const grants = new Map<string, number>()
    const onClaimed = (evt: CustomEvent<{ id: string }>): void => { grants.set(evt.detail.id, (grants.get(evt.detail.id) ?? 0) + 1) }
    boss.tasks.addEventListener('claimed', onClaimed)
    const ids = Array.from({ length: ROUNDS }, (_, i) => `race-${i}`)
    for (let i = 0; i < ids.length; i += PARALLEL) {
      await Promise.all(ids.slice(i, i + PARALLEL).map(round))
    }
    boss.tasks.removeEventListener('claimed', onClaimed)
    // the offerer decided once per task
    expect([...grants.values()].every(n => n === 1)).toBe(true)
    expect(grants.size).toBe(ROUNDS)
  }, 900_000)

  it('answers a re-sent claim of the winner with the same grant, and a loser\'s with the same refusal', async () => {
    await boss.tasks.offer(claimants.slice(0, 2).map(c => c.peerId), { id: 'again-1' })
    await eventually(() => claimants.slice(0, 2).every(c => c.tasks.get('again-1') != null), CLAIM_BACKSTOP, 'offers')
    const [a, b] = claimants
    const first = await a.tasks.claim('again-1', { timeout: CLAIM_BACKSTOP })
    await expect(b.tasks.claim('again-1', { timeout: CLAIM_BACKSTOP })).rejects.toThrow(TaskClaimRefusedError)

    const answers = (node: MoltNode): Promise<MoltMessage> => new Promise(resolve => {
      const listener = (evt: CustomEvent<{ message: MoltMessage }>): void => {
        const m = evt.detail.message
        if ((m.op === 'task' && m.p.step === 'grant' && m.p.task_id === 'again-1') || (m.op === 'error' && (m.p.context as any)?.task_id === 'again-1')) {
          node.removeEventListener('message', listener)
          resolve(m)
        }
      }
      node.addEventListener('message', listener)
    })
    const claimOf = (node: MoltNode): Record<string, unknown> => ({ action: 'status', task_id: 'again-1', step: 'claim', claim_id: node.tasks.get('again-1')?.claim?.id })

    const grant = answers(a)
    await a.send(boss.peerId, { op: 'task', p: claimOf(a) }, { sign: true })
    expect((await grant).p).toMatchObject({ step: 'grant', claimant: a.peerId.toString(), claim_id: first.grant?.claimId, granted_at: first.grant?.grantedAt })

    const refusal = answers(b)
    await b.send(boss.peerId, { op: 'task', p: claimOf(b) }, { sign: true })
    expect((await refusal).p).toMatchObject({ code: 'E_TASK_CLAIMED' })
    expect(boss.tasks.get('again-1')?.grant?.claimant).toBe(a.peerId.toString())
    expect(a.tasks.get('again-1')?.state).toBe('claimed')
  }, 600_000)
})
