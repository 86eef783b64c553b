import { it } from 'vitest'
import { TestNetwork, addressOf } from '../support/nodes.js'
it('dbg', async () => {
  const net = new TestNetwork()
  const nodes: any[] = []
  let t = Date.now()
  const b0 = await net.node({ agent: { name: 'boot0' } })
  const b1 = await net.node({ agent: { name: 'boot1' }, bootstrap: [addressOf(b0)] })
  nodes.push(b0, b1)
  for (let i = 2; i < 12; i++) {
    nodes.push(await net.node({ agent: { name: `n${i}` }, bootstrap: [addressOf(b0), addressOf(b1)], dht: { clientMode: i >= 8 } }))
    console.log(i, Date.now() - t); t = Date.now()
  }
  for (let t = 0; t < 5; t++) {
    await new Promise(r => setTimeout(r, 2000))
    console.log(nodes.map(n => n.libp2p.getConnections().length).join(' '))
  }
  t = Date.now()
  await net.cleanup()
  console.log('cleanup', Date.now() - t)
}, 60000)
