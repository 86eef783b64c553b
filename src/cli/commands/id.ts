import { join } from 'node:path'
import { loadKey, identityFromKey } from '../../identity/index.js'
import { loadConfig, findRunningNode } from '../../config/index.js'
import { IDENTITY_FILE } from '../../constants.js'
import { IdentityError } from '../../errors.js'
import { AgentApiUnavailableError } from '../../api/errors.js'
import { connectToRunningAgent } from '../../api/local-agent.js'
import { noPositionals } from '../args.js'
import type { Command } from '../command.js'
import { requireAgentHere } from '../agent-here.js'

export const id: Command = {
  spec: {
    name: 'id',
    details: [
      'A data dir without an agent (no identity) is an error (exit 1, E_AGENT_NOT_FOUND): nothing is created.',
      'With --json prints {peerId, did, key, agent, dataDir, running, addresses}, plus heldBy (a pid) when a',
      'node without a local API (a molt relay) holds the data dir.'
    ].join('\n'),
    options: {}
  },

  async run ({ args, dataDir, out, signal }) {
    noPositionals(args, this.spec)
    await requireAgentHere(dataDir)
    const key = await loadKey(join(dataDir, IDENTITY_FILE))
    if (key == null) throw new IdentityError(`No identity in ${dataDir}: run \`molt init\` first`)
    const identity = identityFromKey(key)
    const config = await loadConfig(dataDir, `agent-${identity.peerId.toString().slice(-8)}`)
    let addresses: string[] | undefined
    let heldBy: number | undefined
    try {
      const running = await connectToRunningAgent(dataDir, { signal, waitMs: 0 })
      addresses = (await running?.client.identity({ signal }))?.addresses
    } catch (err) {
      // the identity is on disk; a node without a reachable API only costs us its addresses
      if (!(err instanceof AgentApiUnavailableError)) throw err
      // a relay on this data dir holds its lock and serves no local API: that is not "not running"
      heldBy = (await findRunningNode(dataDir))?.pid
    }
    const result = {
      peerId: identity.peerId.toString(),
      did: identity.did,
      key: identity.moltKey,
      agent: config.agent,
      dataDir,
      running: addresses != null,
      addresses: addresses ?? [],
      ...(heldBy !== undefined ? { heldBy } : {})
    }
    out.result([
      `PeerId  ${result.peerId}`,
      `DID     ${result.did}`,
      `Key     ${result.key}`,
      `Agent   ${config.agent.name}@${config.agent.org}`,
      ...(addresses != null
        ? ['Running, listening on:', ...addresses.map(a => `  ${a}`)]
        : heldBy !== undefined
          ? [`A molt node (pid ${heldBy}) holds this data dir without a local API: a molt relay, or an agent that does not answer`]
          : ['Not running (start it with `molt agent`)'])
    ], result)
  }
}
