import { CLASSIFICATIONS, OPS, type Classification, type Op } from '../../moltspeak/index.js'
import type { ApiMessageInit, SendResponse } from '../../api/index.js'
import { DELIVERY_MODES, type DeliveryMode } from '../../delivery/constants.js'
import { UsageError } from '../errors.js'
import { booleanFlag, integerFlag, peerPositional, stringFlag } from '../args.js'
import { formatReply } from '../output.js'
import { openNetwork } from '../network.js'
import type { Command } from '../command.js'

/** Ops whose sender waits for a `respond`/`error`/`pong` */
const REPLY_OPS = new Set<Op>(['query', 'task', 'tool', 'ping', 'hello', 'verify', 'discover', 'consent'])

export const send: Command = {
  spec: {
    name: 'send',
    args: '<peer>',
    summary: 'Send one MoltSpeak message to <peer> (a multiaddr ending in /p2p/<id>, or a PeerId)',
    details: [
      `For ${[...REPLY_OPS].join(', ')} it waits for the reply and prints it`,
      '(--json: the reply message, one line); exits 1 when the reply is an `error`.',
      'Other ops (or --no-wait) print where the message is: delivered (the peer acknowledged),',
      'stored (sealed in the peer\'s relay mailboxes) or queued (in the outbox, retried: see molt outbox).',
      'Uses the running agent of the data dir if there is one, else a short-lived node with its identity.'
    ].join('\n'),
    options: {
      op: { type: 'string', arg: '<op>', description: `operation: ${OPS.join(', ')}` },
      payload: { type: 'string', arg: '<json>', description: 'the payload `p` as a JSON object (default {})' },
      cls: { type: 'string', arg: '<cls>', description: `classification: ${CLASSIFICATIONS.join(', ')} (default int)` },
      re: { type: 'string', arg: '<id>', description: 'id of the message this one answers' },
      sign: { type: 'boolean', description: 'sign the message with this agent\'s key' },
      'no-wait': { type: 'boolean', description: 'do not wait for a reply' },
      delivery: { type: 'string', arg: '<mode>', description: `with --no-wait or a non-reply op: ${DELIVERY_MODES.join(', ')} (default at-least-once)` },
      receipt: { type: 'boolean', description: 'ask the recipient for a signed delivery receipt' },
      timeout: { type: 'string', arg: '<ms>', description: 'how long to wait for the reply (default 30000)' }
    }
  },

  async run ({ args, dataDir, out, signal }) {
    const peer = peerPositional(args, this.spec)
    const v = args.values
    const op = stringFlag(v, 'op')
    if (op === undefined) throw new UsageError('molt send needs --op <op> (see molt send --help)')
    if (!(OPS as readonly string[]).includes(op)) throw new UsageError(`--op must be one of ${OPS.join(', ')}, got "${op}"`)
    const cls = stringFlag(v, 'cls')
    if (cls !== undefined && !(CLASSIFICATIONS as readonly string[]).includes(cls)) {
      throw new UsageError(`--cls must be one of ${CLASSIFICATIONS.join(', ')}, got "${cls}"`)
    }
    const timeoutMs = integerFlag(stringFlag(v, 'timeout'), 'timeout', 1, 600_000)
    const message: ApiMessageInit = { op: op as Op, p: parsePayload(stringFlag(v, 'payload')) }
    if (cls !== undefined) message.cls = cls as Classification
    const re = stringFlag(v, 're')
    if (re !== undefined) message.re = re
    const sign = booleanFlag(v, 'sign')
    const delivery = stringFlag(v, 'delivery')
    if (delivery !== undefined && !(DELIVERY_MODES as readonly string[]).includes(delivery)) {
      throw new UsageError(`--delivery must be one of ${DELIVERY_MODES.join(', ')}, got "${delivery}"`)
    }

    const network = await openNetwork(dataDir, signal)
    try {
      if (REPLY_OPS.has(op as Op) && !booleanFlag(v, 'no-wait')) {
        const reply = await network.request(peer, message, { sign, timeoutMs })
        out.result(formatReply(reply), reply)
        return reply.op === 'error' ? 1 : 0
      }
      const result = await network.send(peer, message, { sign, delivery: delivery as DeliveryMode | undefined, receipt: booleanFlag(v, 'receipt') })
      out.result(describeSend(result), result)
      if (result.status === 'queued' && network.via === 'node') {
        out.note('no agent is running for this data dir: the outbox is retried the next time `molt agent` runs')
      }
    } finally {
      await network.close()
    }
  }
}

function describeSend (result: SendResponse): string {
  const what = `${result.message.op} ${result.id} to ${result.peer}`
  switch (result.status) {
    case 'delivered': return `delivered ${what} (${result.route})`
    case 'stored': return `stored ${what} in ${result.mailboxes?.length ?? 0} relay mailbox(es) until ${new Date(result.expires ?? 0).toISOString()}`
    default: return `queued ${what} in the outbox (${result.lastError ?? 'peer unreachable'})` +
      (result.refusals != null && result.refusals.length > 0 ? `; mailboxes refused: ${result.refusals.map(r => `${r.relay.slice(-8)} ${r.reason}`).join(', ')}` : '')
  }
}

function parsePayload (text: string | undefined): Record<string, unknown> {
  if (text === undefined) return {}
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err: any) {
    throw new UsageError(`--payload is not valid JSON: ${err.message}`)
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new UsageError('--payload must be a JSON object')
  return value as Record<string, unknown>
}
