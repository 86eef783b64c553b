import type { Connection, Logger } from '@libp2p/interface'
import { RelayPingTimeoutError } from './errors.js'

export interface HolderPingsInit {
  /** Each connection is pinged once per interval, ms */
  intervalMs: number
  /** A ping unanswered after this aborts its connection, ms */
  timeoutMs: number
}

export interface HolderPingsDeps {
  /** The relay's open connections */
  connections(): Connection[]
  /** One ping of the connection's peer (the node's @libp2p/ping service), rejecting on no answer */
  ping(connection: Connection, options: { signal: AbortSignal }): Promise<unknown>
  log: Logger
}

/**
 * The relay's liveness pings, spread evenly over the interval: libp2p's
 * connection monitor pings every connection in the same tick, so at 5,000
 * holders one tick opened 5,000 ping streams at once, the later ones timed
 * out queued behind the earlier ones on a busy box, and the relay dropped
 * holders that were alive (bench/README.md "Relay capacity"). Here the
 * connections open at the start of a round are pinged one after another,
 * interval / count apart, so a ping's timeout measures the holder, not the
 * relay's own queue. A failed ping aborts the connection (its reservation is
 * then released), as the monitor did.
 */
export class HolderPings {
  private round: Connection[] = []
  private next = 0
  private timer?: ReturnType<typeof setTimeout>
  private readonly controller = new AbortController()
  /** Pings sent and connections aborted since start */
  readonly counts = { sent: 0, failed: 0 }

  constructor (private readonly init: HolderPingsInit, private readonly deps: HolderPingsDeps) {}

  start (): void {
    this.schedule()
  }

  stop (): void {
    this.controller.abort()
    clearTimeout(this.timer)
  }

  private schedule (): void {
    if (this.controller.signal.aborted) return
    if (this.next >= this.round.length) {
      this.round = this.deps.connections()
      this.next = 0
    }
    // an empty relay looks again after a whole interval
    const delay = this.init.intervalMs / Math.max(1, this.round.length)
    this.timer = setTimeout(() => {
      const connection = this.round[this.next++]
      if (connection !== undefined && connection.status === 'open') void this.ping(connection)
      this.schedule()
    }, delay)
    this.timer.unref?.()
  }

  private async ping (connection: Connection): Promise<void> {
    this.counts.sent++
    const signal = AbortSignal.any([this.controller.signal, AbortSignal.timeout(this.init.timeoutMs)])
    try {
      await this.deps.ping(connection, { signal })
    } catch (err: any) {
      // a holder without the ping protocol is not dead; the relay stopping is not a failure
      if (err?.name === 'UnsupportedProtocolError' || this.controller.signal.aborted) return
      this.counts.failed++
      this.deps.log('no ping answer from %p within %d ms, closing its connection - %e', connection.remotePeer, this.init.timeoutMs, err)
      connection.abort(new RelayPingTimeoutError(`no ping answer within ${this.init.timeoutMs} ms`))
    }
  }
}
