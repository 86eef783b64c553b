import { TestNetwork } from './nodes.js'
import type { MoltNode } from '../../src/index.js'
import { startApiServer, loadOrCreateApiToken, ApiClient, type ApiServer, type ApiServerOptions } from '../../src/api/index.js'

/** alice (whose API is served) and bob, two nodes on 127.0.0.1, plus a client of alice's API */
export interface ApiScene {
  net: TestNetwork
  alice: MoltNode
  bob: MoltNode
  token: string
  server: ApiServer
  client: ApiClient
  /** Close the API server, stop the nodes, remove their data dirs */
  cleanup: () => Promise<void>
}

export async function apiScene (options: { introduce?: boolean, server?: Omit<ApiServerOptions, 'token'> } = {}): Promise<ApiScene> {
  const net = new TestNetwork()
  const alice = await net.node({ agent: { name: 'alice', org: 'acme' } })
  const bob = await net.node({ agent: { name: 'bob', org: 'widgets' } })
  if (options.introduce === true) await net.introduce()
  const token = await loadOrCreateApiToken(alice.dataDir)
  const server = await startApiServer(alice, { ...options.server, token })
  return {
    net,
    alice,
    bob,
    token,
    server,
    client: new ApiClient({ url: server.url, token }),
    cleanup: async () => {
      await server.close()
      await net.cleanup()
    }
  }
}
