import type { Startable } from '@libp2p/interface'
import type { InboundMessage } from '../services/speak/index.js'
import type { MailboxClient, MailboxMessage } from '../services/mailbox/index.js'
import type { TrustService } from '../services/trust/index.js'
import type { AgentMetrics } from '../metrics/index.js'
import type { MoltStore } from './store.js'
import type { InboundPipeline } from './inbound.js'

export interface MailboxReceiverComponents {
  mailbox: MailboxClient
  trust: TrustService
  moltMetrics: AgentMetrics
  moltStore: MoltStore
  moltInbound: InboundPipeline
}

/**
 * The mailbox client's deliver hook: messages opened from relay mailboxes
 * join the same inbox (and de-duplication) as direct ones, each sender's in
 * the order it sent them. Once the node runs, the mailboxes of the relays it
 * is connected to are watched.
 */
export class MailboxReceiver implements Startable {
  constructor (private readonly components: MailboxReceiverComponents) {}

  start (): void {}

  afterStart (): void {
    this.components.mailbox.watchConnectedRelays()
  }

  stop (): void {}

  async receive (messages: MailboxMessage[]): Promise<void> {
    const { moltMetrics: metrics, trust } = this.components
    const now = Date.now()
    const fresh: InboundMessage[] = []
    metrics.mailboxFetched.inc(messages.length)
    // the trust decision of each sender once per batch (a page holds a few senders' boxes by the hundred)
    const decisions = new Map<string, ReturnType<TrustService['inboxDecision']>>()
    for (const item of inSendingOrder(messages)) {
      const { message, peer } = item
      let decision = decisions.get(peer.toString())
      if (decision === undefined) decisions.set(peer.toString(), decision = trust.inboxDecision(peer))
      if (message.exp != null && message.exp < now) {
        metrics.refused('E_TIMEOUT')
        continue
      }
      // the trust inbox policy applies whatever the path (speak refuses with E_AUTH_FAILED on the stream;
      // a mailbox message has no stream to answer on, so it is dropped and counted)
      if (decision === 'refuse') {
        metrics.refused('E_AUTH_FAILED')
        continue
      }
      if (this.components.moltStore.replay.checkAndRemember(`${peer.toString()}/${message.id}`, message.ts, now, message.exp)) {
        metrics.duplicate()
        continue
      }
      fresh.push({ message, json: item.json, peer, route: 'mailbox' })
    }
    if (fresh.length > 0) await this.components.moltInbound.receive(fresh)
  }
}

/** By `ts`, stable; a page is usually in order already (one sender's boxes are served as deposited) and then kept as it is */
function inSendingOrder (messages: MailboxMessage[]): MailboxMessage[] {
  let sorted = true
  for (let i = 1; i < messages.length && sorted; i++) sorted = messages[i - 1].message.ts <= messages[i].message.ts
  if (sorted) return messages
  return messages
    .map((item, index) => ({ item, index }))
    .sort((a, b) => a.item.message.ts - b.item.message.ts || a.index - b.index)
    .map(({ item }) => item)
}

export function mailboxReceiver (): (components: MailboxReceiverComponents) => MailboxReceiver {
  return (components) => new MailboxReceiver(components)
}
