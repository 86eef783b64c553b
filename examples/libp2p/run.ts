/**
 * Example — molt added to an application's own js-libp2p nodes: two nodes made
 * with createLibp2p() and `...moltServices()` in their services exchange a
 * signed MoltSpeak message and answer a query. Loopback only. Ends with one
 * deterministic line:
 *   example libp2p: bob got a signed "hello from a plain libp2p node"; alice asked weather.forecast and got "sunny"
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { moltServices, verifyMessage } from '../../src/index.js'

/** An application's libp2p node, with molt's services beside its own */
async function appNode (dataDir: string, name: string) {
  return createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: {
      identify: identify(),
      ...moltServices({ dataDir, agent: { name, org: 'example', capabilities: ['weather.forecast'] }, heartbeatInterval: 0 })
    }
  })
}

const dirs = [await mkdtemp(join(tmpdir(), 'molt-example-')), await mkdtemp(join(tmpdir(), 'molt-example-'))]
const alice = await appNode(dirs[0], 'alice')
const bob = await appNode(dirs[1], 'bob')
try {
  // bob answers weather queries (those naming a city); the return value is sent back as the `respond`
  bob.services.moltHandlers.handle('query', (message) => {
    const params = message.p.params as { city?: string } | undefined
    return message.p.domain !== 'weather' ? undefined : { status: 'success', data: { forecast: params?.city === 'Tokyo' ? 'sunny' : 'unknown' } }
  })
  // bob reads his inbox in arrival order, from where it is now
  const inbox = bob.services.moltInbox.messages({ after: bob.services.moltInbox.cursor() })

  await alice.dial(bob.getMultiaddrs()[0])
  const sent = await alice.services.molt.send(bob.peerId, { op: 'query', p: { domain: 'greeting', intent: 'hello', params: { text: 'hello from a plain libp2p node' } } }, { sign: true })
  const { value: received } = await inbox.next()
  const signed = received != null && verifyMessage(received.message)
  const reply = await alice.services.molt.request(bob.peerId, { op: 'query', p: { domain: 'weather', intent: 'forecast', params: { city: 'Tokyo' } } })
  await inbox.return(undefined)
  process.stdout.write(`example libp2p: bob got a ${signed && sent.delivered ? 'signed' : 'UNSIGNED'} "${String((received?.message.p.params as { text?: string } | undefined)?.text)}"; ` +
    `alice asked weather.forecast and got "${String((reply.p.data as { forecast?: string } | undefined)?.forecast)}"\n`)
} finally {
  await Promise.all([alice.stop(), bob.stop()])
  await Promise.all(dirs.map(async dir => rm(dir, { recursive: true, force: true })))
}
