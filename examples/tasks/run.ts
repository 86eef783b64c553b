/**
 * Example — tasks. A dispatcher offers one task to two workers; both try to
 * claim it, the dispatcher grants exactly one ("first agent wins") and
 * refuses the other with E_TASK_CLAIMED; the winner reports progress and
 * completes; every step is a signed MoltSpeak message acknowledged by a
 * signed delivery receipt. Ends with one line:
 *   example tasks: report-1 offered to 2 workers; 1 claim granted, 1 refused (E_TASK_CLAIMED); completed with "3 findings"; receipts: 2 offers, 1 grant, 1 completion
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createMoltNode, TaskClaimRefusedError, type MoltNode, type TaskRecord } from '../../src/index.js'

const dirs: string[] = []
const nodes: MoltNode[] = []
const start = async (name: string): Promise<MoltNode> => {
  const dataDir = await mkdtemp(join(tmpdir(), `molt-example-${name}-`))
  dirs.push(dataDir)
  // everything on 127.0.0.1; no mDNS
  const node = await createMoltNode({ dataDir, listen: ['/ip4/127.0.0.1/tcp/0'], agent: { name, org: 'example' }, libp2p: { connectionManager: { allow: ['/ip4/127.0.0.1'] } as any } })
  nodes.push(node)
  return node
}

/** A worker: claims every task offered to it; if granted, does it */
function work (worker: MoltNode, outcomes: string[]): void {
  worker.tasks.addEventListener('offered', (evt: CustomEvent<TaskRecord>) => {
    const id = evt.detail.id
    void (async () => {
      try {
        await worker.tasks.claim(id)
      } catch (err) {
        outcomes.push(err instanceof TaskClaimRefusedError ? err.code : String(err))
        return
      }
      outcomes.push('granted')
      await worker.tasks.progress(id, { progress: 0.5, note: 'reading' })
      await worker.tasks.complete(id, { summary: '3 findings' })
    })()
  })
}

try {
  const dispatcher = await start('dispatcher')
  const workers = [await start('worker-a'), await start('worker-b')]
  for (const node of [dispatcher, ...workers]) {
    for (const other of [dispatcher, ...workers]) if (other !== node) await node.libp2p.peerStore.merge(other.peerId, { multiaddrs: other.getMultiaddrs() })
  }
  const outcomes: string[] = []
  for (const worker of workers) work(worker, outcomes)

  const completed = new Promise<TaskRecord>(resolve => {
    dispatcher.tasks.addEventListener('completed', (evt: CustomEvent<TaskRecord>) => { resolve(evt.detail) })
  })
  await dispatcher.tasks.offer(workers.map(w => w.peerId), { id: 'report-1', type: 'summarise', description: 'summarise the quarterly report', priority: 'high' })
  const done = await completed
  const deadline = Date.now() + 20_000
  while (outcomes.length < workers.length) {
    if (Date.now() > deadline) throw new Error('a worker never learned the decision')
    await new Promise(resolve => setTimeout(resolve, 50))
  }

  // the signed receipts: the workers' for the offers, the winner's for the grant, the dispatcher's for the completion
  const winner = workers.find(w => w.peerId.toString() === done.worker)
  if (winner == null) throw new Error('no winner')
  const offers = done.messages.filter(m => m.step === 'offer')
  const receipts = { offers: 0, grant: 0, completion: 0 }
  for (const offer of offers) if ((await dispatcher.receipt(offer.id, { timeout: 20_000 })).message.sig != null) receipts.offers++
  const grant = done.messages.find(m => m.step === 'grant')
  if (grant != null && (await dispatcher.receipt(grant.id, { timeout: 20_000 })).peer === done.worker) receipts.grant++
  const completion = winner.tasks.get('report-1')?.messages.find(m => m.step === 'complete')
  if (completion != null && (await winner.receipt(completion.id, { timeout: 20_000 })).peer === dispatcher.peerId.toString()) receipts.completion++

  const granted = outcomes.filter(o => o === 'granted').length
  const refused = outcomes.filter(o => o !== 'granted')
  const summary = (done.result as { summary?: string } | undefined)?.summary
  process.stdout.write(`example tasks: ${done.id} offered to ${offers.length} workers; ${granted} claim granted, ${refused.length} refused (${refused.join(', ')}); ` +
    `completed with "${summary}"; receipts: ${receipts.offers} offers, ${receipts.grant} grant, ${receipts.completion} completion\n`)
} finally {
  await Promise.allSettled(nodes.map(async n => n.stop()))
  await Promise.all(dirs.map(async d => rm(d, { recursive: true, force: true })))
}
