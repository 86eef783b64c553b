import { booleanFlag, integerFlag, noPositionals, stringFlag } from '../args.js'
import { formatEntry } from '../output.js'
import { openNetwork } from '../network.js'
import type { Command } from '../command.js'
import { requireAgentHere } from '../agent-here.js'

export const inbox: Command = {
  spec: {
    name: 'inbox',
    details: [
      'Each line starts with #<cursor>: --after <cursor> goes on from there.',
      'With --json prints {"messages":[…],"next":<cursor>}; pass next as --after to continue.',
      'With --follow keeps printing new messages (--json: one {"event":"message",…} per line) until Ctrl-C.',
      'Reads the running agent\'s inbox through its API, else the data dir\'s store directly.',
      'Ping/pong (presence heartbeats, molt ping) are answered but not kept here unless sent exactly-once.',
      'A data dir without an agent (no identity) is an error (exit 1, E_AGENT_NOT_FOUND): nothing is created.'
    ].join('\n'),
    options: {
      after: { type: 'string', arg: '<cursor>', description: 'only messages after this cursor (default 0: from the start)' },
      limit: { type: 'string', arg: '<n>', description: 'at most this many messages, 1-1000 (default 100; without --follow)' },
      follow: { type: 'boolean', short: 'f', description: 'keep printing new messages as they arrive' }
    }
  },

  async run ({ args, dataDir, out, signal }) {
    noPositionals(args, this.spec)
    const after = integerFlag(stringFlag(args.values, 'after'), 'after', 0, Number.MAX_SAFE_INTEGER) ?? 0
    const limit = integerFlag(stringFlag(args.values, 'limit'), 'limit', 1, 1000) ?? 100

    await requireAgentHere(dataDir)
    const network = await openNetwork(dataDir, signal)
    try {
      if (booleanFlag(args.values, 'follow')) {
        try {
          for await (const entry of network.follow(after, signal)) out.message(entry, { numbered: true })
        } catch (err) {
          if (!signal.aborted) throw err
        }
        return
      }
      const page = await network.inbox({ after, limit })
      out.result(page.messages.map(entry => `#${entry.cursor} ${formatEntry(entry)}`), page)
      if (page.messages.length === 0) out.note('no messages')
      else if (page.messages.length === limit) out.note(`more may follow: molt inbox --after ${page.next}`)
    } finally {
      await network.close()
    }
  }
}
