/**
 * Example 5 — trust. Alice asks Bob to do a task; it goes well, so she signs
 * a `task_completion` attestation about him (published on the gossipsub topic
 * molt/trust/1). Carol, who trusts Alice (she is in Carol's pre-trusted list)
 * but never dealt with Bob, receives the attestation and reads Bob's score,
 * with the attestation that explains it. Ends with one line:
 *   example trust: alice attested bob (task_completion, completed, 5/5); carol scores bob above neutral (band …) because of alice
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createMoltNode, type MoltNode, type MoltNodeOptions } from '../../src/index.js'

const dirs: string[] = []
const nodes: MoltNode[] = []
const start = async (name: string, options: MoltNodeOptions = {}): Promise<MoltNode> => {
  const dataDir = await mkdtemp(join(tmpdir(), `molt-example-${name}-`))
  dirs.push(dataDir)
  // everything on 127.0.0.1; no mDNS
  const node = await createMoltNode({ dataDir, listen: ['/ip4/127.0.0.1/tcp/0'], agent: { name, org: 'example' }, libp2p: { connectionManager: { allow: ['/ip4/127.0.0.1'] } as any }, ...options })
  nodes.push(node)
  return node
}

try {
  const alice = await start('alice')
  const bob = await start('bob')
  bob.handle('task', (message) => ({ status: 'success', data: { task_id: message.p.task_id, result: 'summary written' } }))
  const carol = await start('carol', { trust: { preTrusted: [alice.peerId.toString()] } })
  // a small mesh: everyone connected to everyone, so gossip reaches all
  for (const [a, b] of [[alice, bob], [alice, carol], [bob, carol]]) await a.libp2p.dial(b.getMultiaddrs()[0])

  const reply = await alice.request(bob.peerId, { op: 'task', p: { action: 'create', task_id: 'summary-1', description: 'summarise the report' } })
  if (reply.p.status !== 'success') throw new Error('the task failed')
  const attestation = await alice.trust.attest({ subject: bob.peerId, type: 'task_completion', taskId: 'summary-1', outcome: 'completed', rating: 5, domain: 'summarise' })

  // gossip takes a moment: wait until Carol holds the attestation
  const deadline = Date.now() + 20_000
  while (carol.trust.get(attestation.id) == null) {
    if (Date.now() > deadline) throw new Error('the attestation did not reach carol')
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  const score = carol.trust.score(bob.peerId)
  const because = score.explain[0]?.issuer === alice.peerId.toString() ? 'alice' : 'someone else'
  const relation = score.score > 0.5 ? 'above neutral' : 'not above neutral'
  process.stdout.write(`example trust: alice attested bob (task_completion, completed, 5/5); carol scores bob ${relation} (band ${score.band}) because of ${because}\n`)
} finally {
  await Promise.allSettled(nodes.map(async n => n.stop()))
  await Promise.all(dirs.map(async d => rm(d, { recursive: true, force: true })))
}
