import { afterEach, describe, expect, it } from 'vitest'
import { TestNetwork } from '../support/nodes.js'
import { eventually } from '../support/eventually.js'
import { TaskClaimRefusedError, TaskStateError, type MoltNode, type TaskRecord } from '../../src/index.js'

/** Resolves with the first `type` event of `node.tasks` for `taskId` */
async function nextEvent (node: MoltNode, type: string, taskId: string): Promise<TaskRecord> {
  return new Promise(resolve => {
    const listener = (evt: CustomEvent<TaskRecord>): void => {
      if (evt.detail.id !== taskId) return
      node.tasks.removeEventListener(type, listener)
      resolve(evt.detail)
    }
    node.tasks.addEventListener(type, listener)
  })
}

describe('task lifecycle', () => {
  let net: TestNetwork
  afterEach(async () => { await net.cleanup() })

  it('offer → claim → progress → complete, signed, with receipts, on both sides', async () => {
    net = new TestNetwork()
    const boss = await net.node()
    const worker = await net.node()
    await net.introduce()

    const offered = nextEvent(worker, 'offered', 'job-1')
    const offer = await boss.tasks.offer(worker.peerId, { id: 'job-1', type: 'summarize', description: 'sum it', params: { n: 3 }, priority: 'high' })
    expect(offer.state).toBe('offered')
    expect(offer.offeredTo).toEqual([worker.peerId.toString()])
    const seen = await offered
    expect(seen).toMatchObject({ role: 'worker', state: 'offered', offerer: boss.peerId.toString(), type: 'summarize', params: { n: 3 }, priority: 'high' })

    const claimed = await worker.tasks.claim('job-1')
    expect(claimed.state).toBe('claimed')
    expect(claimed.grant?.claimant).toBe(worker.peerId.toString())
    expect(boss.tasks.get('job-1')).toMatchObject({ state: 'claimed', worker: worker.peerId.toString() })

    const running = nextEvent(boss, 'running', 'job-1')
    await worker.tasks.progress('job-1', { progress: 0.5, note: 'half' })
    expect(await running).toMatchObject({ state: 'running', progress: 0.5, note: 'half' })

    const completed = nextEvent(boss, 'completed', 'job-1')
    const done = await worker.tasks.complete('job-1', { answer: 42 })
    expect(done.state).toBe('completed')
    expect((await completed).result).toEqual({ answer: 42 })

    // every transition was a signed MoltSpeak message: the inbox holds them with their signatures
    const inbox = await boss.inbox()
    const fromWorker = inbox.filter(e => e.peer === worker.peerId.toString() && e.message.p.task_id === 'job-1')
    expect(fromWorker.map(e => e.message.op)).toEqual(expect.arrayContaining(['task', 'respond']))
    for (const entry of fromWorker) expect(entry.message.sig).toMatch(/^ed25519:/)
    const completion = inbox.find(e => e.message.op === 'respond' && e.message.p.task_id === 'job-1')
    expect(completion?.message.re).toBe(seen.offerMessage)

    // and each was acknowledged by a signed delivery receipt from the other side
    const completeId = done.messages.find(m => m.step === 'complete')?.id
    const receipt = await worker.receipt(completeId ?? '')
    expect(receipt.peer).toBe(boss.peerId.toString())
    expect(receipt.message.sig).toMatch(/^ed25519:/)
    const offerId = boss.tasks.get('job-1')?.messages.find(m => m.step === 'offer')?.id
    expect((await boss.receipt(offerId ?? '')).peer).toBe(worker.peerId.toString())

    expect(boss.tasks.list({ role: 'offerer' }).map(t => t.id)).toEqual(['job-1'])
    expect(worker.tasks.list({ state: 'completed' }).map(t => t.id)).toEqual(['job-1'])
  })

  it('keeps tasks across restarts on both sides', async () => {
    net = new TestNetwork()
    const bossDir = await net.dir()
    const workerDir = await net.dir()
    let boss = await net.node({ dataDir: bossDir })
    let worker = await net.node({ dataDir: workerDir })
    await net.introduce()
    const offered = nextEvent(worker, 'offered', 'persist-1')
    await boss.tasks.offer(worker.peerId, { id: 'persist-1', type: 't' })
    await offered
    await worker.tasks.claim('persist-1')
    await boss.stop()
    await worker.stop()

    boss = await net.node({ dataDir: bossDir })
    worker = await net.node({ dataDir: workerDir })
    expect(boss.tasks.get('persist-1')).toMatchObject({ role: 'offerer', state: 'claimed', worker: worker.peerId.toString() })
    expect(worker.tasks.get('persist-1')).toMatchObject({ role: 'worker', state: 'claimed' })

    // the lifecycle goes on after the restart
    await boss.libp2p.peerStore.merge(worker.peerId, { multiaddrs: worker.getMultiaddrs() })
    await worker.libp2p.peerStore.merge(boss.peerId, { multiaddrs: boss.getMultiaddrs() })
    const failed = nextEvent(boss, 'failed', 'persist-1')
    await worker.tasks.fail('persist-1', 'out of tokens')
    expect(await failed).toMatchObject({ state: 'failed', error: { code: 'E_TASK_FAILED', message: 'out of tokens' } })
  })

  it('cancel tells every offeree; a claim on a cancelled task is refused', async () => {
    net = new TestNetwork()
    const boss = await net.node()
    const a = await net.node()
    const b = await net.node()
    await net.introduce()
    await boss.tasks.offer([a.peerId, b.peerId], { id: 'cancel-1' })
    await eventually(() => a.tasks.get('cancel-1') != null && b.tasks.get('cancel-1') != null, 10_000, 'offers')
    const cancelledA = nextEvent(a, 'cancelled', 'cancel-1')
    const cancelledB = nextEvent(b, 'cancelled', 'cancel-1')
    expect((await boss.tasks.cancel('cancel-1', 'not needed')).state).toBe('cancelled')
    await cancelledA
    await cancelledB
    await expect(a.tasks.claim('cancel-1')).rejects.toThrow(TaskStateError)
    await expect(boss.tasks.cancel('cancel-1')).rejects.toThrow(TaskStateError)
  })

  it('refuses claims from agents the task was not offered to, and ignores unsigned task messages', async () => {
    net = new TestNetwork()
    const boss = await net.node()
    const offeree = await net.node()
    const stranger = await net.node()
    await net.introduce()
    await boss.tasks.offer(offeree.peerId, { id: 'closed-1' })
    await eventually(() => offeree.tasks.get('closed-1'), 10_000, 'offer')

    // an unsigned claim from the offeree: ignored, the task stays open
    await offeree.send(boss.peerId, { op: 'task', p: { action: 'status', task_id: 'closed-1', step: 'claim', claim_id: 'x' } }, { sign: false })
    // a signed claim from a stranger: refused with E_TASK_NOT_OFFERED
    const refusal = new Promise<Record<string, unknown>>(resolve => {
      stranger.addEventListener('message', (evt) => {
        if (evt.detail.message.op === 'error') resolve(evt.detail.message.p)
      })
    })
    await stranger.send(boss.peerId, { op: 'task', p: { action: 'status', task_id: 'closed-1', step: 'claim', claim_id: 'y' } }, { sign: true })
    expect(await refusal).toMatchObject({ code: 'E_TASK_NOT_OFFERED', context: { task_id: 'closed-1', claim_id: 'y' } })
    expect(boss.tasks.get('closed-1')?.state).toBe('offered')

    // an offeree can still win it
    expect((await offeree.tasks.claim('closed-1')).state).toBe('claimed')
    // a forged completion from the stranger changes nothing
    await stranger.send(boss.peerId, { op: 'respond', re: '00000000-0000-4000-8000-000000000000', p: { status: 'success', task_id: 'closed-1', data: 'fake' } }, { sign: true })
    await boss.ping(stranger.peerId) // the respond above was dispatched before this round trip ended
    expect(boss.tasks.get('closed-1')?.state).toBe('claimed')
  })

  it('a second claimant loses at once with E_TASK_CLAIMED', async () => {
    net = new TestNetwork()
    const boss = await net.node()
    const a = await net.node()
    const b = await net.node()
    await net.introduce()
    await boss.tasks.offer([a.peerId, b.peerId], { id: 'race-1' })
    await eventually(() => a.tasks.get('race-1') != null && b.tasks.get('race-1') != null, 10_000, 'offers')
    await a.tasks.claim('race-1')
    const err = await b.tasks.claim('race-1').catch(e => e)
    expect(err).toBeInstanceOf(TaskClaimRefusedError)
    expect(err.code).toBe('E_TASK_CLAIMED')
    expect(b.tasks.get('race-1')).toMatchObject({ state: 'refused', error: { code: 'E_TASK_CLAIMED' } })
    await expect(b.tasks.complete('race-1')).rejects.toThrow(TaskStateError)
  })

  it('a claimant stopped between its claim and the decision still ends with exactly one grant', async () => {
    net = new TestNetwork()
    const boss = await net.node()
    const aDir = await net.dir()
    let a = await net.node({ dataDir: aDir, tasks: { claimRetryInterval: 200 } })
    const b = await net.node()
    await net.introduce()
    await boss.tasks.offer([a.peerId, b.peerId], { id: 'restart-1' })
    await eventually(() => a.tasks.get('restart-1') != null && b.tasks.get('restart-1') != null, 20_000, 'offers')

    // a's claim is on disk and sent; a stops before (or while) the decision comes back
    const pending = await a.tasks.claim('restart-1', { wait: false })
    expect(pending.claim?.id).toBeDefined()
    await a.stop()
    const bOutcome = await b.tasks.claim('restart-1').then(r => r.state, (err) => err.code)

    a = await net.node({ dataDir: aDir, tasks: { claimRetryInterval: 200 } })
    expect(a.tasks.get('restart-1')?.claim?.id).toBe(pending.claim?.id)
    await boss.libp2p.peerStore.merge(a.peerId, { multiaddrs: a.getMultiaddrs() })
    await a.libp2p.peerStore.merge(boss.peerId, { multiaddrs: boss.getMultiaddrs() })
    await boss.retryOutbox(a.peerId)
    // a's claim was decided before it stopped (the grant or refusal waits in boss's outbox), or is re-sent now
    const aState = await eventually(() => {
      const state = a.tasks.get('restart-1')?.state
      return state === 'claimed' || state === 'refused' ? state : undefined
    }, 60_000, 'a decision for a')
    const winner = boss.tasks.get('restart-1')?.worker
    if (aState === 'claimed') {
      expect(winner).toBe(a.peerId.toString())
      expect(bOutcome).toBe('E_TASK_CLAIMED')
    } else {
      expect(winner).toBe(b.peerId.toString())
      expect(bOutcome).toBe('claimed')
    }
  }, 120_000)

  it('a node that refuses unhandled requests still takes task messages (no E_CAPABILITY_UNKNOWN back)', async () => {
    net = new TestNetwork()
    const boss = await net.node({ unhandledRequests: 'refuse' })
    const worker = await net.node({ unhandledRequests: 'refuse' })
    await net.introduce()
    const errors: unknown[] = []
    for (const node of [boss, worker]) {
      node.addEventListener('message', (evt) => { if (evt.detail.message.op === 'error') errors.push(evt.detail.message.p) }, { passive: true })
    }
    await boss.tasks.offer(worker.peerId, { id: 'refuse-mode-1' })
    await eventually(() => worker.tasks.get('refuse-mode-1'), 20_000, 'offer')
    await worker.tasks.claim('refuse-mode-1')
    const completed = nextEvent(boss, 'completed', 'refuse-mode-1')
    await worker.tasks.progress('refuse-mode-1', { progress: 1 })
    await worker.tasks.complete('refuse-mode-1', 'ok')
    await completed
    // an untaken request is still refused, so the refusals would have arrived before this one
    const refused = await boss.request(worker.peerId, { op: 'query', p: { domain: 'x' } }, { timeout: 20_000 })
    expect(refused.p.code).toBe('E_CAPABILITY_UNKNOWN')
    expect(errors.filter((p: any) => p.code === 'E_CAPABILITY_UNKNOWN')).toEqual([refused.p])
  })
})
