import { booleanFlag, integerFlag, peerPositional, stringFlag } from '../args.js'
import { UsageError } from '../errors.js'
import { formatCard } from '../output.js'
import { openNetwork } from '../network.js'
import type { Command } from '../command.js'
import { requireAgentHere } from '../agent-here.js'

export const card: Command = {
  spec: {
    name: 'card',
    args: '[<peer>]',
    summary: 'Show <peer>\'s verified agent card (multiaddr with /p2p/<id>, or PeerId), or this agent\'s own',
    details: [
      'The card is checked (signature, key ↔ PeerId, expiry) before it is shown; an invalid one exits 1.',
      'With --json prints the card as one JSON object.',
      'Without <peer> it reads this agent\'s own card and needs an agent in the data dir (exit 1, E_AGENT_NOT_FOUND,',
      'otherwise); with <peer> it talks to the network as this agent, creating its identity if there is none (as molt init).'
    ].join('\n'),
    options: {
      refresh: { type: 'boolean', description: 'fetch the card again even when a cached one is still valid' },
      timeout: { type: 'string', arg: '<ms>', description: 'give up after this long (default: the card protocol\'s 10 s)' }
    }
  },

  async run ({ args, dataDir, out, signal }) {
    const peer = args.positionals.length > 0 ? peerPositional(args, this.spec) : undefined
    const force = booleanFlag(args.values, 'refresh')
    if (peer === undefined && force) throw new UsageError('--refresh needs a <peer> (see molt card --help)')
    const timeoutMs = integerFlag(stringFlag(args.values, 'timeout'), 'timeout', 1, 600_000)

    if (peer === undefined) await requireAgentHere(dataDir)
    const network = await openNetwork(dataDir, signal)
    try {
      const result = await network.card(peer, { force, timeoutMs })
      out.result(formatCard(result), result)
    } finally {
      await network.close()
    }
  }
}
