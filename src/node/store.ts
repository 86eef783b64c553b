import type { ComponentLogger, Logger, Startable } from '@libp2p/interface'
import { reopenDatabase, type Database } from '../storage/index.js'
import { Inbox } from '../inbox/index.js'
import { Outbox } from '../delivery/outbox.js'
import { MAX_DEAD_LETTERS, MAX_OUTBOX_MESSAGES } from '../delivery/constants.js'
import type { ReplayWindow } from '../moltspeak/replay-window.js'
import { DEFAULT_INBOX_MAX_MESSAGES } from '../constants.js'

export interface MoltStoreInit {
  /** The node's LevelDB (opened here if it is not yet) */
  db: Database
  /** Close the database after the services stopped (it was opened for them). @default false */
  closeDb?: boolean
  /** The window of received ids, shared with speak; exactly-once ids from the inbox are loaded into it */
  replay: ReplayWindow
  /** @default 100000 */
  inboxMaxMessages?: number
  /** How long an inbox write nobody waits on waits to share a LevelDB batch, in ms. @default 2 (src/inbox/constants.ts) */
  inboxWriteDelay?: number
  /** @default 100000 */
  outboxMaxMessages?: number
}

export interface MoltStoreComponents {
  logger: ComponentLogger
}

/**
 * The node's messaging state on disk: the inbox (with the exactly-once ids
 * it remembers across restarts), the outbox and the delivery receipts. Opened
 * in beforeStart, so everything is loaded before speak or the mailbox client
 * can deliver anything; closed after every service stopped.
 */
export class MoltStore implements Startable {
  readonly replay: ReplayWindow
  readonly db: Database
  private inboxStore?: Inbox
  private outboxStore?: Outbox
  private readonly log: Logger

  constructor (components: MoltStoreComponents, private readonly init: MoltStoreInit) {
    this.replay = init.replay
    this.db = init.db
    this.log = components.logger.forComponent('molt:store')
  }

  get inbox (): Inbox { return opened(this.inboxStore) }
  get outbox (): Outbox { return opened(this.outboxStore) }

  /** Receipts of messages this node sent, by message id (JSON DeliveryReceipt) */
  get receipts (): ReturnType<Database['sublevel']> {
    return this.db.sublevel('receipts', { keyEncoding: 'utf8', valueEncoding: 'utf8' })
  }

  async beforeStart (): Promise<void> {
    // after a stop (libp2p can be started again) the database and its sublevels were closed
    if (this.db.status !== 'open') await reopenDatabase(this.db)
    const inbox = new Inbox(this.db, { maxMessages: this.init.inboxMaxMessages ?? DEFAULT_INBOX_MAX_MESSAGES, deferWriteDelay: this.init.inboxWriteDelay })
    await inbox.open()
    // exactly-once: ids received before a restart are still known after it
    for await (const [key, until] of inbox.seen()) this.replay.remember(key, until)
    const outbox = new Outbox(this.db, { maxMessages: this.init.outboxMaxMessages ?? MAX_OUTBOX_MESSAGES, maxDeadLetters: MAX_DEAD_LETTERS })
    await outbox.open()
    this.inboxStore = inbox
    this.outboxStore = outbox
    this.log('inbox at cursor %d, %d messages in the outbox', inbox.lastCursor, outbox.size)
  }

  start (): void {}

  stop (): void {}

  async afterStop (): Promise<void> {
    await this.outboxStore?.close()
    if (this.init.closeDb === true) await this.db.close()
  }
}

function opened<T> (value: T | undefined): T {
  if (value == null) throw new StoreNotOpenError('the molt store is not open (libp2p not started)')
  return value
}

/** The store was used before libp2p started it */
export class StoreNotOpenError extends Error {
  static override name = 'StoreNotOpenError'
  override name = 'StoreNotOpenError'
}

export function moltStore (init: MoltStoreInit): (components: MoltStoreComponents) => MoltStore {
  return (components) => new MoltStore(components, init)
}
