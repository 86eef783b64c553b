import { Queue, QueueFullError } from '@libp2p/utils'
import type { AbortOptions } from '@libp2p/interface'
import { DHT_PUBLISH_CONCURRENCY, DHT_PUBLISH_MAX_QUEUED, DHT_PUBLISH_PROCESS_CONCURRENCY, DHT_PUBLISH_PROCESS_MAX_QUEUED } from './constants.js'

/** More publications wait for a DHT walk than DHT_PUBLISH_MAX_QUEUED: this one was not queued */
export class PublishQueueFullError extends Error {
  static override name = 'PublishQueueFullError'
  override name = 'PublishQueueFullError'
}

export interface PublishQueueInit {
  /** Publications (DHT walks) run at once. @default DHT_PUBLISH_CONCURRENCY */
  concurrency?: number
  /** Publications waiting their turn before more are refused. @default DHT_PUBLISH_MAX_QUEUED */
  maxQueued?: number
  /** A queue whose turn a publication also waits for once it has its own (the process's). @default none */
  shared?: PublishQueue
}

/**
 * Runs one node's DHT publications (its routing record, its capability
 * adverts) a few at a time. Each is a walk to the closest servers and a store
 * on up to 20 of them; a node joining a forming network otherwise starts them
 * all at once — and again each time its routing table doubles — and in a
 * 100-node network that was ≈ 100 walks in flight, whose requests timed out
 * in the busy process and stored nothing (protocols/routing.md, "Known
 * limits"). A publication's own time bound starts when its turn comes, not
 * while it waits.
 */
export class PublishQueue {
  private readonly queue: Queue<unknown>
  private readonly shared?: PublishQueue

  constructor (init: PublishQueueInit = {}) {
    this.queue = new Queue({ concurrency: init.concurrency ?? DHT_PUBLISH_CONCURRENCY, maxSize: init.maxQueued ?? DHT_PUBLISH_MAX_QUEUED })
    this.shared = init.shared
  }

  /** Publications running now */
  get running (): number {
    return this.queue.running
  }

  /** Publications waiting their turn */
  get queued (): number {
    return this.queue.queued
  }

  /**
   * Run `publication` once fewer than `concurrency` others run; rejects with
   * `signal`'s reason if it aborts first, and with PublishQueueFullError when
   * too many wait already
   */
  async run<T> (publication: () => Promise<T>, options: AbortOptions = {}): Promise<T> {
    options.signal?.throwIfAborted()
    try {
      const turn = this.shared == null ? publication : async () => this.shared!.run(publication, options)
      return await this.queue.add(turn, options) as T
    } catch (err: any) {
      if (err instanceof QueueFullError) throw new PublishQueueFullError(`${this.queue.queued} DHT publications are waiting already`)
      throw err
    }
  }
}

/**
 * The process's share: nodes in one process (an embedder's agents, a test's
 * network) share its CPU, and walks beyond what it can serve only time out.
 * Measured with 100 nodes in one process: with a walk per node in flight, DHT
 * requests waited 10–40 s for the event loop and 87 % of publications stored
 * nothing (protocols/routing.md, "Known limits")
 */
const processQueue = new PublishQueue({ concurrency: DHT_PUBLISH_PROCESS_CONCURRENCY, maxQueued: DHT_PUBLISH_PROCESS_MAX_QUEUED })

/** One queue per DHT instance: the routing record service and the capability advertiser of a node share it */
const queues = new WeakMap<object, PublishQueue>()

/** The publication queue of the node whose DHT is `dht` (its turn taken, it waits for the process's) */
export function publishQueue (dht: object): PublishQueue {
  let queue = queues.get(dht)
  if (queue == null) {
    queue = new PublishQueue({ shared: processQueue })
    queues.set(dht, queue)
  }
  return queue
}
