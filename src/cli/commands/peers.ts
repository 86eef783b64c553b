import { noPositionals } from '../args.js'
import { formatPeers } from '../output.js'
import { openNetwork } from '../network.js'
import type { Command } from '../command.js'

export const peers: Command = {
  spec: {
    name: 'peers',
    summary: 'List the agents this agent knows: status (connected / seen / stale), last seen, route, name, rtt',
    details: [
      '`seen`: not connected now but seen within the last 5 minutes; `stale`: longer ago.',
      'rtt comes from the last presence heartbeat (MoltSpeak ping). With --json prints one array of',
      '{peerId, status, lastSeen (Unix ms), route?, addresses, name?, org?, capabilities, rttMs?, load?, queueDepth?}.',
      'Only a running agent knows peers: without one, the list is empty.'
    ].join('\n'),
    options: {}
  },

  async run ({ args, dataDir, out, signal }) {
    noPositionals(args, this.spec)
    const network = await openNetwork(dataDir, signal)
    try {
      const known = await network.peers()
      out.result(known.length > 0 ? formatPeers(known) : [], known)
      if (known.length === 0) out.note(network.via === 'api' ? 'no known agents yet' : 'no known agents (no agent runs for this data dir: start one with `molt agent`)')
    } finally {
      await network.close()
    }
  }
}
