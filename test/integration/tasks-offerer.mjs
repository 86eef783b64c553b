/**
 * The offerer of test/integration/tasks-crash.test.ts, as a real process the
 * test can kill -9 (plain .mjs over the built dist/).
 *
 *   <dataDir> <port> <claimants.json> [offer <taskId>]
 *
 * claimants.json: [{ "id": <PeerId>, "addr": <multiaddr> }]. Prints READY,
 * then OFFERED <taskId> after an offer, CLAIM <taskId> <peer> per claim
 * received (before the decision) and GRANTED <taskId> <peer> per grant decided.
 * A line `offer <taskId>` on stdin offers another task (then OFFERED <taskId>):
 * the test's next round reuses the restarted offerer rather than start one more.
 * Listens on and dials 127.0.0.1 only; mDNS stays off.
 */
import { readFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { createMoltNode } from '../../dist/src/index.js'

const [dataDir, port, claimantsFile, mode, taskId] = process.argv.slice(2)
const say = (line) => { process.stdout.write(line + '\n') }

const node = await createMoltNode({
  dataDir,
  listen: [`/ip4/127.0.0.1/tcp/${port}`],
  libp2p: { connectionManager: { allow: ['/ip4/127.0.0.1'] } },
  heartbeatInterval: 0,
  tasks: { receipts: false }
})
const claimants = JSON.parse(readFileSync(claimantsFile, 'utf8'))
for (const { id, addr } of claimants) await node.libp2p.peerStore.merge(peerIdFromString(id), { multiaddrs: [multiaddr(addr)] })
node.tasks.addEventListener('claim', (evt) => { say(`CLAIM ${evt.detail.task.id} ${evt.detail.claimant}`) })
node.tasks.addEventListener('claimed', (evt) => { say(`GRANTED ${evt.detail.id} ${evt.detail.worker}`) })
process.on('SIGTERM', () => { node.stop().finally(() => process.exit(0)) })
const offer = async (id) => {
  await node.tasks.offer(claimants.map(c => c.id), { id, type: 'crash' })
  say(`OFFERED ${id}`)
}
createInterface({ input: process.stdin }).on('line', (line) => {
  const [command, id] = line.split(' ')
  if (command === 'offer' && id != null) offer(id).catch((err) => { console.error(err); process.exit(1) })
})
say('READY')
if (mode === 'offer') await offer(taskId)
