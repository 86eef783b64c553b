import type { MoltEvents } from './events.js'
import type { MoltStore } from './store.js'
import type { ReceivedMessage } from './types.js'

/** Inbox entries read per round of messages() */
const READ_BATCH = 256

export interface InboxReaderComponents {
  moltEvents: MoltEvents
  moltStore: MoltStore
}

/**
 * Reading the inbox: a page of it, or every entry in order as it arrives
 * (nothing is lost to a slow reader: it reads from disk at its own pace).
 * A running messages() counts as something that may answer requests.
 */
export class InboxReader {
  constructor (private readonly components: InboxReaderComponents) {}

  async list (options: { after?: number, limit?: number } = {}): Promise<ReceivedMessage[]> {
    return this.components.moltStore.inbox.list(options)
  }

  /** Cursor of the newest inbox entry (0 when empty) */
  cursor (): number {
    return this.components.moltStore.inbox.lastCursor
  }

  /** Everything received after `after` (default: from now on), until `signal` aborts or the node stops */
  async * messages (options: { after?: number, signal?: AbortSignal } = {}): AsyncGenerator<ReceivedMessage> {
    const { moltEvents: events } = this.components
    events.readerStarted()
    try {
      yield * this.read(options)
    } finally {
      events.readerStopped()
    }
  }

  private async * read (options: { after?: number, signal?: AbortSignal }): AsyncGenerator<ReceivedMessage> {
    const { moltEvents: events, moltStore: store } = this.components
    let cursor = options.after ?? store.inbox.lastCursor
    const signal = options.signal
    while (signal?.aborted !== true && !events.isStopped) {
      // listen before reading, so an arrival during the read is never missed
      let wake: () => void = () => {}
      const arrived = new Promise<void>(resolve => { wake = resolve })
      events.addEventListener('stored', wake)
      events.addEventListener('stop', wake)
      signal?.addEventListener('abort', wake)
      try {
        const batch = await store.inbox.list({ after: cursor, limit: READ_BATCH })
        for (const entry of batch) {
          cursor = entry.cursor
          yield entry
        }
        if (batch.length === 0) await arrived
      } finally {
        events.removeEventListener('stored', wake)
        events.removeEventListener('stop', wake)
        signal?.removeEventListener('abort', wake)
      }
    }
  }
}

export function inboxReader (): (components: InboxReaderComponents) => InboxReader {
  return (components) => new InboxReader(components)
}
