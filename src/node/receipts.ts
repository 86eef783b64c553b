import { createHash } from 'node:crypto'
import type { ComponentLogger, Logger } from '@libp2p/interface'
import { replyClassification, signingBytes } from '../moltspeak/index.js'
import type { InboundMessage } from '../services/speak/index.js'
import { EXT_NAMESPACE } from '../delivery/constants.js'
import { RequestTimeoutError } from '../errors.js'
import { DEFAULT_REQUEST_TIMEOUT } from '../constants.js'
import type { MoltEvents } from './events.js'
import type { MoltStore } from './store.js'
import type { MessageFactory } from './messages.js'
import type { Messenger } from './messenger.js'
import type { DeliveryReceipt, ReceivedMessage } from './types.js'

export interface ReceiptsComponents {
  logger: ComponentLogger
  molt: Messenger
  moltEvents: MoltEvents
  moltStore: MoltStore
  moltMessages: MessageFactory
}

/**
 * Signed delivery receipts (protocols/delivery.md): sent for a stored message
 * whose sender asked for one; kept when one arrives for a message sent from
 * here (it is the proof), and handed to whoever waits for it.
 */
export class Receipts {
  private readonly log: Logger

  constructor (private readonly components: ReceiptsComponents) {
    this.log = components.logger.forComponent('molt:node')
  }

  /** `item` is in the inbox now: sign a receipt for it and send it at-least-once */
  send (item: InboundMessage, receivedAt: number): void {
    const { message } = item
    const digest = createHash('sha256').update(signingBytes(message)).digest('hex')
    this.components.molt.send(item.peer, {
      op: 'respond',
      re: message.id,
      to: { agent: message.from.agent, org: message.from.org },
      cls: replyClassification(message, {}, this.components.moltMessages.agent.org),
      p: { status: 'success', receipt: { id: message.id, digest, received_at: receivedAt } },
      ext: { [EXT_NAMESPACE]: { receipt_for: message.id } }
    }, { sign: true, delivery: 'at-least-once' }).catch((err: Error) => {
      this.log('could not send the receipt for %s to %p - %e', message.id, item.peer, err)
    })
  }

  /** A receipt arrived for a message we sent: keep it (it is the proof) and tell waiters */
  accept (entry: ReceivedMessage): void {
    const { message } = entry
    const receipt = message.p.receipt as { id?: unknown, digest?: unknown, received_at?: unknown } | undefined
    if (message.sig == null || typeof receipt?.id !== 'string' || typeof receipt.digest !== 'string') {
      this.log('ignoring an unsigned or malformed receipt from %s', entry.peer)
      return
    }
    const value: DeliveryReceipt = {
      id: receipt.id,
      peer: entry.peer,
      digest: receipt.digest,
      receivedAt: Number(receipt.received_at),
      message
    }
    this.components.moltStore.receipts.put(value.id, JSON.stringify(value)).then(() => {
      this.components.moltEvents.dispatchEvent(new CustomEvent('receipt', { detail: value }))
    }, (err: Error) => { this.log.error('could not store the receipt for %s - %e', value.id, err) })
  }

  /** The receipt of message `id`: a stored one at once, otherwise when it arrives (up to `timeout`) */
  async wait (id: string, options: { signal?: AbortSignal, timeout?: number } = {}): Promise<DeliveryReceipt> {
    const { moltEvents: events } = this.components
    const timeout = options.timeout ?? DEFAULT_REQUEST_TIMEOUT
    const signal = AbortSignal.any([...(options.signal != null ? [options.signal] : []), AbortSignal.timeout(timeout)])
    let onReceipt: (evt: CustomEvent<DeliveryReceipt>) => void = () => {}
    let onAbort: () => void = () => {}
    // listen before looking in the store, so a receipt landing in between is not missed
    const arrived = new Promise<DeliveryReceipt>((resolve, reject) => {
      onReceipt = (evt) => { if (evt.detail.id === id) resolve(evt.detail) }
      onAbort = () => {
        reject(options.signal?.aborted === true ? options.signal.reason : new RequestTimeoutError(`no delivery receipt for ${id} within ${timeout} ms`))
      }
    })
    // the deadline may pass while the store is read, before `arrived` is awaited:
    // without this an unhandled rejection is reported (found by test/fuzz/api.test.ts)
    arrived.catch(() => {})
    events.addEventListener('receipt', onReceipt)
    signal.addEventListener('abort', onAbort, { once: true })
    try {
      const stored = await this.components.moltStore.receipts.get(id) as string | undefined
      if (stored !== undefined) return JSON.parse(stored) as DeliveryReceipt
      return await arrived
    } finally {
      events.removeEventListener('receipt', onReceipt)
      signal.removeEventListener('abort', onAbort)
    }
  }
}

export function receipts (): (components: ReceiptsComponents) => Receipts {
  return (components) => new Receipts(components)
}
