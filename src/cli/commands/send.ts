import { CLASSIFICATIONS, OPS, type Classification, type Op } from '../../moltspeak/index.js'
import type { ApiMessageInit, SendResponse } from '../../api/index.js'
import type { DeliveryReceipt } from '../../node.js'
import { DELIVERY_MODES, type DeliveryMode } from '../../delivery/constants.js'
import { UsageError } from '../errors.js'
import { booleanFlag, checkPeerAddress, integerFlag, listFlag, peerPositional, stringFlag } from '../args.js'
import { formatReply } from '../output.js'
import { openNetwork, type Network } from '../network.js'
import type { Output } from '../output.js'
import type { Command } from '../command.js'

/** Ops whose sender waits for a `respond`/`error`/`pong` */
const REPLY_OPS = new Set<Op>(['query', 'task', 'tool', 'ping', 'hello', 'verify', 'discover', 'consent'])

/** How long to wait for a reply or a delivery receipt, ms */
const DEFAULT_TIMEOUT_MS = 30_000

/**
 * Exit codes of `molt send`, the same with or without a running agent (a
 * script can trust them): 0 only when the message reached the recipient or
 * its relay mailboxes. 75 is EX_TEMPFAIL of sysexits.h: try again later.
 */
export const SEND_EXIT = {
  /** delivered (acknowledged by the recipient), stored (sealed in its relay mailboxes), or the reply arrived */
  ok: 0,
  /** the reply is an `error`, no reply in time, best-effort not acknowledged, or any other failure */
  failed: 1,
  /** bad command line */
  usage: 2,
  /** queued: only in this data dir's outbox, not yet anywhere the recipient can read it */
  queued: 75,
  /** SIGINT/SIGTERM */
  interrupted: 130
} as const

export const send: Command = {
  spec: {
    name: 'send',
    args: '<peer>',
    details: [
      `For ${[...REPLY_OPS].join(', ')} it waits for the reply and prints it`,
      '(--json: the reply message, one line). Other ops (or --no-wait) print where the message is:',
      'delivered (the peer acknowledged), stored (sealed in the peer\'s relay mailboxes until it',
      'fetches them) or queued (in this data dir\'s outbox, retried: see molt outbox).',
      '',
      'A bare PeerId is enough: the agent looks up the peer\'s signed routing record in the DHT and',
      'tries its direct addresses, then its relays, then its relay mailboxes.',
      'It uses the running agent of the data dir if there is one (molt agent). Otherwise it starts a',
      'short-lived node with the data dir\'s identity that bootstraps from config.json relays and',
      'discovery.bootstrap, MOLT_RELAYS, MOLT_BOOTSTRAP and --relay/--bootstrap, sends, and exits.',
      'A queued message then waits in <data-dir>\'s outbox until the next `molt agent` on that data',
      'dir retries it; a running agent retries it itself (backoff up to 60 s).',
      '',
      'With --receipt the recipient signs a delivery receipt: printed when it arrives (--json: the',
      '"receipt" field); if the message was stored or queued, it comes later: molt receipt <id>.',
      '',
      'Exit codes (the same with or without a running agent):',
      `  ${SEND_EXIT.ok}    delivered, stored, or the reply arrived (respond, pong)`,
      `  ${SEND_EXIT.failed}    the reply is an \`error\`, no reply within --timeout, best-effort not acknowledged,`,
      '       refused, or another failure (stderr says which; --json: {"error":{"code","message"}})',
      `  ${SEND_EXIT.usage}    bad command line`,
      `  ${SEND_EXIT.queued}   queued: in the outbox only, not delivered yet (EX_TEMPFAIL: try again later)`,
      `  ${SEND_EXIT.interrupted}  interrupted (SIGINT/SIGTERM)`
    ].join('\n'),
    options: {
      op: { type: 'string', arg: '<op>', description: `operation: ${OPS.join(', ')}` },
      payload: { type: 'string', arg: '<json>', description: 'the payload `p` as a JSON object (default {})' },
      cls: { type: 'string', arg: '<cls>', description: `classification: ${CLASSIFICATIONS.join(', ')} (default int)` },
      re: { type: 'string', arg: '<id>', description: 'id of the message this one answers' },
      sign: { type: 'boolean', description: 'sign the message with this agent\'s key' },
      'no-wait': { type: 'boolean', description: 'do not wait for a reply' },
      delivery: { type: 'string', arg: '<mode>', description: `with --no-wait or a non-reply op: ${DELIVERY_MODES.join(', ')} (default at-least-once)` },
      receipt: { type: 'boolean', description: 'ask the recipient for a signed delivery receipt and print it (with --no-wait or a non-reply op)' },
      timeout: { type: 'string', arg: '<ms>', description: `how long to wait for the reply or the receipt (default ${DEFAULT_TIMEOUT_MS})` },
      relay: { type: 'string', multiple: true, arg: '<multiaddr>', description: 'without a running agent: also use this relay (multiaddr ending in /p2p/<PeerId>) to bootstrap and to reach the peer' },
      bootstrap: { type: 'string', multiple: true, arg: '<multiaddr>', description: 'without a running agent: also bootstrap the DHT from this peer (multiaddr ending in /p2p/<PeerId>)' }
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
    const waitsForReply = REPLY_OPS.has(op as Op) && !booleanFlag(v, 'no-wait')
    const receipt = booleanFlag(v, 'receipt')
    if (receipt && waitsForReply) {
      throw new UsageError(`--receipt is for messages sent without waiting for a reply (the reply to a ${op} is the proof); add --no-wait`)
    }
    const relays = (listFlag(v, 'relay') ?? []).map(a => checkPeerAddress(a, '--relay'))
    const bootstrap = (listFlag(v, 'bootstrap') ?? []).map(a => checkPeerAddress(a, '--bootstrap'))

    const network = await openNetwork(dataDir, signal, { relays, bootstrap })
    try {
      if (network.via === 'api' && relays.length + bootstrap.length > 0) {
        out.note(`molt: the agent running for ${dataDir} (pid ${network.agentPid ?? '?'}) uses its own relays and bootstrap peers: --relay/--bootstrap are ignored`)
      }
      if (waitsForReply) {
        const reply = await network.request(peer, message, { sign, timeoutMs: timeoutMs ?? DEFAULT_TIMEOUT_MS })
        out.result(formatReply(reply), reply)
        return reply.op === 'error' ? SEND_EXIT.failed : SEND_EXIT.ok
      }
      const result = await network.send(peer, message, { sign, delivery: delivery as DeliveryMode | undefined, receipt })
      const proof = receipt && result.status === 'delivered' ? await waitForReceipt(network, result.id, timeoutMs ?? DEFAULT_TIMEOUT_MS) : undefined
      const outbox = result.status === 'queued' ? whereItWaits(network, dataDir) : undefined
      out.result(
        [describeSend(result, dataDir), ...(proof != null ? describeReceipt(proof) : [])],
        { ...result, ...(receipt ? { receipt: proof ?? null } : {}), ...(outbox != null ? { outbox } : {}) }
      )
      if (outbox != null) noteQueued(out, outbox, result)
      if (receipt && proof == null) {
        out.note(result.status === 'delivered'
          ? `molt: no receipt within ${timeoutMs ?? DEFAULT_TIMEOUT_MS} ms; it may still come: molt receipt ${result.id}`
          : `molt: the receipt comes when ${result.peer} gets the message: read it then with molt receipt ${result.id}` +
            (network.via === 'node' ? ` (receipts reach this data dir while \`molt agent --data-dir ${dataDir}\` runs)` : ''))
      }
      return result.status === 'queued' ? SEND_EXIT.queued : SEND_EXIT.ok
    } finally {
      await network.close()
    }
  }
}

/** Where a queued message waits and what retries it (the --json `outbox` field) */
interface OutboxPlace {
  /** The data dir whose outbox holds it */
  dataDir: string
  /** `agent`: the running agent retries it; `next-agent`: the next `molt agent` on the data dir will */
  retriedBy: 'agent' | 'next-agent'
  agentPid?: number
}

function whereItWaits (network: Network, dataDir: string): OutboxPlace {
  return network.via === 'api'
    ? { dataDir, retriedBy: 'agent', ...(network.agentPid != null ? { agentPid: network.agentPid } : {}) }
    : { dataDir, retriedBy: 'next-agent' }
}

function noteQueued (out: Output, place: OutboxPlace, result: SendResponse): void {
  const until = result.expires != null ? ` until ${new Date(result.expires).toISOString()}` : ''
  out.note(place.retriedBy === 'agent'
    ? `molt: the agent running for ${place.dataDir} (pid ${place.agentPid ?? '?'}) retries it${until}; see molt outbox`
    : `molt: no agent is running for ${place.dataDir}: the message waits in its outbox and is retried the next time ` +
      `\`molt agent\` runs on it (\`molt agent --data-dir ${place.dataDir}\`)${until}; see molt outbox (exit ${SEND_EXIT.queued}: not delivered yet)`)
}

/** The receipt, or undefined when it did not come within `timeoutMs` */
async function waitForReceipt (network: Network, id: string, timeoutMs: number): Promise<DeliveryReceipt | undefined> {
  try {
    return await network.receipt(id, { timeoutMs })
  } catch (err: any) {
    if (err?.name === 'RequestTimeoutError' || err?.code === 'E_TIMEOUT') return undefined
    throw err
  }
}

export function describeReceipt (receipt: DeliveryReceipt): string[] {
  return [
    `receipt for ${receipt.id}: ${receipt.peer} received it at ${new Date(receipt.receivedAt).toISOString()}`,
    `  signed receipt message ${receipt.message.id} from ${receipt.message.from.agent}@${receipt.message.from.org}, message digest sha256:${receipt.digest}`
  ]
}

function describeSend (result: SendResponse, dataDir: string): string {
  const what = `${result.message.op} ${result.id} to ${result.peer}`
  switch (result.status) {
    case 'delivered': return `delivered ${what} (${result.route}${result.route === 'relayed' && result.relay != null ? ` via ${result.relay}` : ''})`
    case 'stored': return `stored ${what} in ${result.mailboxes?.length ?? 0} relay mailbox(es) until ${new Date(result.expires ?? 0).toISOString()}`
    default: return `queued ${what} in the outbox of ${dataDir} (${result.lastError ?? 'peer unreachable'})` +
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
