import { describe, it, expect } from 'vitest'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { multiaddr } from '@multiformats/multiaddr'
import { pinListenPorts, saveAgentSettings, loadConfig } from '../../src/config/index.js'

const ID = '12D3KooWCAm5LSzKCUd3CnVUFyy2nEKne22LT146cL8Q6iDrphq1'
const RELAY = '12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN'
const bound = (...addresses: string[]): ReturnType<typeof multiaddr>[] => addresses.map(a => multiaddr(a))

describe('pinListenPorts', () => {
  it('replaces each port 0 by the port bound for the same transport, on every interface for 0.0.0.0', () => {
    const pinned = pinListenPorts(['/ip4/0.0.0.0/tcp/0', '/ip4/0.0.0.0/tcp/0/ws'], bound(
      `/ip4/127.0.0.1/tcp/4100/ws/p2p/${ID}`,
      `/ip4/127.0.0.1/tcp/4099/p2p/${ID}`,
      `/ip4/10.0.0.5/tcp/4099/p2p/${ID}`
    ))
    expect(pinned).toEqual(['/ip4/0.0.0.0/tcp/4099', '/ip4/0.0.0.0/tcp/4100/ws'])
  })

  it('matches a named host exactly and never takes a relay\'s port from a circuit address', () => {
    const pinned = pinListenPorts(['/ip4/10.1.0.2/tcp/0', '/ip4/127.0.0.1/tcp/0'], bound(
      `/ip4/198.18.0.10/tcp/4001/p2p/${RELAY}/p2p-circuit/p2p/${ID}`,
      `/ip4/127.0.0.1/tcp/5000/p2p/${ID}`
    ))
    expect(pinned).toEqual(['/ip4/10.1.0.2/tcp/0', '/ip4/127.0.0.1/tcp/5000'])
  })

  it('returns undefined when no port was 0 or none was bound', () => {
    expect(pinListenPorts(['/ip4/127.0.0.1/tcp/4001'], bound(`/ip4/127.0.0.1/tcp/4001/p2p/${ID}`))).toBeUndefined()
    expect(pinListenPorts(['/ip4/127.0.0.1/tcp/0'], [])).toBeUndefined()
  })
})

describe('saveAgentSettings', () => {
  it('writes listen, adds relays and bootstrap once, and keeps fields it does not know', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'molt-settings-'))
    try {
      await writeFile(join(dir, 'config.json'), JSON.stringify({ agent: { name: 'kept' }, relays: [`/ip4/127.0.0.1/tcp/1/p2p/${RELAY}`] }))
      const relay2 = `/ip4/127.0.0.1/tcp/2/p2p/${RELAY}`
      const boot = `/ip4/127.0.0.1/tcp/3/p2p/${ID}`
      const first = await saveAgentSettings(dir, { listen: ['/ip4/127.0.0.1/tcp/4099'], relays: [`/ip4/127.0.0.1/tcp/1/p2p/${RELAY}`, relay2], bootstrap: [boot] })
      expect(first).toEqual({ listen: ['/ip4/127.0.0.1/tcp/4099'], relays: [relay2], bootstrap: [boot] })
      expect(await saveAgentSettings(dir, { listen: ['/ip4/127.0.0.1/tcp/4099'], relays: [relay2], bootstrap: [boot] })).toEqual({})
      const config = await loadConfig(dir)
      expect(config.agent.name).toBe('kept')
      expect(config.listen).toEqual(['/ip4/127.0.0.1/tcp/4099'])
      expect(config.relays).toEqual([`/ip4/127.0.0.1/tcp/1/p2p/${RELAY}`, relay2])
      expect(config.discovery.bootstrap).toEqual([boot])
      expect(JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')).discovery).toEqual({ bootstrap: [boot] })
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
