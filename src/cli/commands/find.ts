import { UsageError } from '../errors.js'
import { integerFlag, onePositional, stringFlag } from '../args.js'
import { formatAgent } from '../output.js'
import { openNetwork } from '../network.js'
import type { Command } from '../command.js'

/** Longest capability name an agent card may list */
const MAX_CAPABILITY_LENGTH = 128

export const find: Command = {
  spec: {
    name: 'find',
    args: '<capability>',
    details: [
      'Agents this node is connected to (LAN peers found by mDNS) come first, then DHT providers;',
      'each peer is listed once. With --json prints one array of',
      '{peerId, name, org, capabilities, addresses, source, card}.',
      'Asks the running agent through its API, else a short-lived node (no mDNS; the DHT through',
      'config.json discovery.bootstrap).'
    ].join('\n'),
    options: {
      limit: { type: 'string', arg: '<n>', description: 'at most this many agents, 1-100 (default 20)' },
      timeout: { type: 'string', arg: '<ms>', description: 'give up after this long (default: no limit)' }
    }
  },

  async run ({ args, dataDir, out, signal }) {
    const capability = onePositional(args, this.spec, '<capability>')
    if (capability === '' || capability.length > MAX_CAPABILITY_LENGTH) {
      throw new UsageError(`<capability> must be 1-${MAX_CAPABILITY_LENGTH} characters`)
    }
    const limit = integerFlag(stringFlag(args.values, 'limit'), 'limit', 1, 100)
    const timeoutMs = integerFlag(stringFlag(args.values, 'timeout'), 'timeout', 1, 600_000)

    const network = await openNetwork(dataDir, signal)
    try {
      const agents = await network.discover(capability, { limit, timeoutMs })
      out.result(agents.flatMap(formatAgent), agents.map(agent => ({
        peerId: agent.peerId,
        name: agent.card.name,
        org: agent.card.org,
        capabilities: agent.card.capabilities.map(c => c.name),
        addresses: agent.card.addresses,
        source: agent.source,
        card: agent.card
      })))
      if (agents.length === 0) out.note(`no agent offering ${capability} found`)
    } finally {
      await network.close()
    }
  }
}
