/**
 * Example 4 — capability discovery. A translator agent advertises the
 * capability `translate.text` in the private DHT (its bootstrap peer is a
 * second agent, as a relay would be in a real network); a third agent that
 * knows only the bootstrap peer discovers who offers `translate.text`, checks
 * the agent's signed card, and asks it. Ends with one line:
 *   example discovery: found translator@example offering translate.text; "hello" in fr is "bonjour"
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createMoltNode, type MoltNode } from '../../src/index.js'

const WORDS: Record<string, Record<string, string>> = { fr: { hello: 'bonjour' }, de: { hello: 'hallo' } }
const dirs: string[] = []
const nodes: MoltNode[] = []
const start = async (name: string, options: Parameters<typeof createMoltNode>[0]): Promise<MoltNode> => {
  const dataDir = await mkdtemp(join(tmpdir(), `molt-example-${name}-`))
  dirs.push(dataDir)
  // everything on 127.0.0.1; no mDNS
  const node = await createMoltNode({ dataDir, listen: ['/ip4/127.0.0.1/tcp/0'], libp2p: { connectionManager: { allow: ['/ip4/127.0.0.1'] } as any }, ...options })
  nodes.push(node)
  return node
}

try {
  const hub = await start('hub', { agent: { name: 'hub', org: 'example' } })
  const bootstrap = [hub.getMultiaddrs()[0].toString()]
  const translator = await start('translator', { agent: { name: 'translator', org: 'example', capabilities: ['translate.text'] }, bootstrap })
  translator.handle('query', (message) => {
    const params = (message.p.params ?? {}) as { text?: string, to?: string }
    const translated = WORDS[params.to ?? '']?.[params.text ?? '']
    return { status: translated != null ? 'success' : 'partial', data: { text: translated ?? params.text } }
  })
  const seeker = await start('seeker', { agent: { name: 'seeker', org: 'example' }, bootstrap })

  // the advertisement reaches the DHT shortly after start: ask until it is there
  let found = await seeker.discover('translate.text', { limit: 5, signal: AbortSignal.timeout(5000) })
  for (let i = 0; found.length === 0 && i < 20; i++) {
    await new Promise(resolve => setTimeout(resolve, 250))
    found = await seeker.discover('translate.text', { limit: 5, signal: AbortSignal.timeout(5000) })
  }
  const agent = found[0]
  if (agent == null) throw new Error('no agent offering translate.text was found')
  const reply = await seeker.request(agent.peerId, { op: 'query', p: { domain: 'translate', intent: 'translate.text', params: { text: 'hello', to: 'fr' } } })
  const data = reply.p.data as { text: string }
  process.stdout.write(`example discovery: found ${agent.card.name}@${agent.card.org} offering translate.text; "hello" in fr is ${JSON.stringify(data.text)}\n`)
} finally {
  await Promise.allSettled(nodes.map(async n => n.stop()))
  await Promise.all(dirs.map(async d => rm(d, { recursive: true, force: true })))
}
