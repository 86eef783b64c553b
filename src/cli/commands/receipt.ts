import { integerFlag, onePositional, stringFlag } from '../args.js'
import { openNetwork } from '../network.js'
import { requireAgentHere } from '../agent-here.js'
import { describeReceipt, SEND_EXIT } from './send.js'
import type { Command } from '../command.js'

/** How long `molt receipt` waits by default: 0 = only look at what is stored */
const DEFAULT_WAIT_MS = 0

export const receipt: Command = {
  spec: {
    name: 'receipt',
    args: '<id>',
    details: [
      'The recipient signs a receipt when the message reaches its inbox; this data dir keeps it once',
      'it arrives (to the running agent, or the next `molt agent` on this data dir when the message',
      'was stored or queued). --json prints {"receipt":{"id","peer","digest","receivedAt","message"}},',
      'message being the signed receipt itself.',
      '',
      `Exit codes: ${SEND_EXIT.ok} the receipt is here, ${SEND_EXIT.queued} not (yet): try again later or --wait,`,
      `${SEND_EXIT.usage} bad command line, ${SEND_EXIT.failed} another failure.`
    ].join('\n'),
    options: {
      wait: { type: 'string', arg: '<ms>', description: `wait up to <ms> for it to arrive (default ${DEFAULT_WAIT_MS}: only look)` }
    }
  },

  async run ({ args, dataDir, out, signal }) {
    const id = onePositional(args, this.spec, '<id>')
    const waitMs = integerFlag(stringFlag(args.values, 'wait'), 'wait', 0, 600_000) ?? DEFAULT_WAIT_MS
    await requireAgentHere(dataDir)
    const network = await openNetwork(dataDir, signal)
    try {
      // the API's smallest timeout is 1 ms: a stored receipt is still returned at once
      const found = await network.receipt(id, { timeoutMs: Math.max(1, waitMs) }).catch((err: any) => {
        if (err?.name === 'RequestTimeoutError' || err?.code === 'E_TIMEOUT') return undefined
        throw err
      })
      if (found == null) {
        out.error('E_TIMEOUT', `no receipt for ${id} ${waitMs > 0 ? `within ${waitMs} ms` : 'yet'}: it comes once the recipient gets the message` +
          (network.via === 'node' ? ` and an agent runs on ${dataDir} (molt agent)` : ''))
        return SEND_EXIT.queued
      }
      out.result(describeReceipt(found), { receipt: found })
      return SEND_EXIT.ok
    } finally {
      await network.close()
    }
  }
}
