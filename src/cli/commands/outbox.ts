import { booleanFlag, noPositionals, stringFlag } from '../args.js'
import { openNetwork } from '../network.js'
import type { Command } from '../command.js'
import { requireAgentHere } from '../agent-here.js'

export const outbox: Command = {
  spec: {
    name: 'outbox',
    details: [
      'An at-least-once or exactly-once message whose recipient could not be reached, and that no relay',
      'mailbox took, waits here; the agent retries it (backoff with jitter, and at once when the peer',
      'connects) until it is delivered or its exp passes — then it is listed under --dead as expired.',
      'With --json prints {"pending":[…],"dead":[…]} (entries without the message bodies).',
      'Reads the running agent through its API, else the data dir\'s store directly.',
      'A data dir without an agent (no identity) is an error (exit 1, E_AGENT_NOT_FOUND): nothing is created.'
    ].join('\n'),
    options: {
      peer: { type: 'string', arg: '<peerId>', description: 'only messages to this peer' },
      dead: { type: 'boolean', description: 'also list messages given up on (expired, refused by the recipient)' }
    }
  },

  async run ({ args, dataDir, out, signal }) {
    noPositionals(args, this.spec)
    await requireAgentHere(dataDir)
    const network = await openNetwork(dataDir, signal)
    try {
      const { pending, dead } = await network.outbox(stringFlag(args.values, 'peer'))
      const lines = pending.map(e =>
        `${e.id} ${e.op} to ${e.peer} · ${e.mode} · queued ${new Date(e.createdAt).toISOString()} · expires ${new Date(e.exp).toISOString()}` +
        (e.lastError != null ? ` · last error: ${e.lastError}` : ''))
      if (booleanFlag(args.values, 'dead')) {
        for (const l of dead) lines.push(`DEAD ${l.id} ${l.op} to ${l.peer} · ${l.reason} at ${new Date(l.at).toISOString()}`)
      }
      out.result(lines, { pending, dead })
      if (pending.length === 0) out.note('the outbox is empty')
    } finally {
      await network.close()
    }
  }
}
