/** How a message left the outbox */
export type LeftStatus = 'delivered' | 'stored'

/** What the watch needs of a node: its `outbox` events */
export interface OutboxEvents {
  addEventListener: (type: 'outbox', listener: (evt: CustomEvent<{ id: string, status: LeftStatus }>) => void) => void
  removeEventListener: (type: 'outbox', listener: (evt: CustomEvent<{ id: string, status: LeftStatus }>) => void) => void
}

/** The outbox messages that left (delivered or stored) since the watch began, and a wait for one of them */
export class OutboxWatch {
  private readonly left = new Map<string, LeftStatus>()
  private readonly waiting = new Map<string, (status: LeftStatus) => void>()
  private readonly onOutbox = (evt: CustomEvent<{ id: string, status: LeftStatus }>): void => {
    this.left.set(evt.detail.id, evt.detail.status)
    this.waiting.get(evt.detail.id)?.(evt.detail.status)
  }

  constructor (private readonly node: OutboxEvents) {
    node.addEventListener('outbox', this.onOutbox)
  }

  seen (id: string): LeftStatus | undefined {
    return this.left.get(id)
  }

  /** The message's status once it leaves the outbox; undefined if `signal` aborts first */
  async wait (id: string, signal: AbortSignal): Promise<LeftStatus | undefined> {
    const seen = this.left.get(id)
    if (seen !== undefined || signal.aborted) return seen
    return new Promise(resolve => {
      const done = (status?: LeftStatus): void => {
        this.waiting.delete(id)
        signal.removeEventListener('abort', onAbort)
        resolve(status)
      }
      const onAbort = (): void => { done(undefined) }
      this.waiting.set(id, done)
      signal.addEventListener('abort', onAbort, { once: true })
    })
  }

  close (): void {
    this.node.removeEventListener('outbox', this.onOutbox)
  }
}
