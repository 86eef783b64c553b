import type { Startable } from '@libp2p/interface'
import type { MoltMessage } from '../moltspeak/index.js'
import { NotStartedError } from '../errors.js'

interface PendingRequest {
  peer: string
  resolve: (reply: MoltMessage) => void
  reject: (err: Error) => void
}

/** A request waiting for its reply: settle it early with reject(), always release() it */
export interface PendingReply {
  readonly reply: Promise<MoltMessage>
  reject(err: Error): void
  release(): void
}

/**
 * Matches replies to requests: a `respond`, `error` or `pong` whose `re` is a
 * waiting request's id, from the peer it was sent to. Pending requests fail
 * with NotStartedError when the node stops.
 */
export class RequestTracker implements Startable {
  private readonly requests = new Map<string, PendingRequest>()

  /** Wait for the reply to `id` from `peer` */
  expect (id: string, peer: string): PendingReply {
    let pending!: PendingRequest
    const reply = new Promise<MoltMessage>((resolve, reject) => {
      pending = { peer, resolve, reject }
    })
    this.requests.set(id, pending)
    // the caller's timer may reject before it awaits: never leave that rejection unhandled
    reply.catch(() => {})
    return {
      reply,
      reject: (err) => { this.requests.get(id)?.reject(err) },
      release: () => { this.requests.delete(id) }
    }
  }

  /** A message arrived from `peer`: the reply some request waits for? */
  settle (message: MoltMessage, peer: string): void {
    if (message.re == null || (message.op !== 'respond' && message.op !== 'error' && message.op !== 'pong')) return
    const pending = this.requests.get(message.re)
    if (pending?.peer === peer) pending.resolve(message)
  }

  start (): void {}

  /** Before the other services stop: requesters hear at once that no reply will come */
  beforeStop (): void {
    for (const pending of this.requests.values()) pending.reject(new NotStartedError('node stopped'))
  }

  stop (): void {}
}

export function requestTracker (): () => RequestTracker {
  return () => new RequestTracker()
}
