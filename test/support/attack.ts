import type { MoltNode } from '../../src/index.js'
import type { TestNetwork } from './nodes.js'

/** A gater that never dials anything but loopback, whatever a test feeds in */
export const loopbackOnly = { denyDialMultiaddr: (ma: any) => !ma.toString().startsWith('/ip4/127.') }

export interface AttackScene { target: MoltNode, attacker: MoltNode, honest: MoltNode }

/**
 * The three nodes of an attack test: a target that echoes queries, an
 * attacker, and an honest peer whose latency shows whether the target still
 * serves; all connected (one warm-up request each) before anything is measured.
 */
export async function attackScene (net: TestNetwork): Promise<AttackScene> {
  const target = await net.node({ agent: { name: 'target', org: 'acme' }, libp2p: { connectionGater: loopbackOnly } })
  const attacker = await net.node({ agent: { name: 'mallory', org: 'evil' }, libp2p: { connectionGater: loopbackOnly } })
  const honest = await net.node({ agent: { name: 'honest', org: 'acme' }, libp2p: { connectionGater: loopbackOnly } })
  await net.introduce()
  target.handle('query', (m) => ({ status: 'success', data: m.p }))
  await honest.request(target.peerId, { op: 'query', p: { domain: 'warm-up' } })
  await attacker.request(target.peerId, { op: 'query', p: { domain: 'warm-up' } })
  return { target, attacker, honest }
}
