import { noPositionals } from '../args.js'
import { formatPeers } from '../output.js'
import { openNetwork } from '../network.js'
import type { Command } from '../command.js'
import { requireAgentHere } from '../agent-here.js'

export const peers: Command = {
  spec: {
    name: 'peers',
    details: [
      '`seen`: not connected now but seen within the last 5 minutes; `stale`: longer ago.',
      'ROLE comes from the protocols a peer serves (identify): `agent` speaks /molt/speak, `relay` serves the',
      'circuit relay hop or the mailbox protocol; `-` before identify or for other libp2p software.',
      'RTT is this agent\'s last MoltSpeak ping of the peer (the heartbeat every 60 s, or `molt ping`), else libp2p\'s',
      'connection monitor (every 10 s while connected; relays only have this one). With --json prints one array of',
      '{peerId, status, role?, agentVersion?, lastSeen (Unix ms), route?, addresses, name?, org?, capabilities, rttMs?, load?, queueDepth?}.',
      'Only a running agent knows peers: without one, the list is empty. A data dir without an agent (no identity)',
      'is an error (exit 1, E_AGENT_NOT_FOUND): nothing is created.'
    ].join('\n'),
    options: {}
  },

  async run ({ args, dataDir, out, signal }) {
    noPositionals(args, this.spec)
    await requireAgentHere(dataDir)
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
