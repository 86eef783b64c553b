import type { ComponentLogger, Logger } from '@libp2p/interface'
import { READER_GRACE } from '../constants.js'

type Listener = ((evt: Event) => unknown) | { handleEvent(evt: Event): unknown }

/**
 * The node's events (`message`, `housekeeping`, `receipt`, `outbox`,
 * `dead-letter`, and the internal `stored` / `stop`), with what the inbound
 * path needs to know about who listens: building an event per message is not
 * free, so it counts `message` listeners; and it tells whether anything may
 * answer a request that no handler takes (a non-passive listener, or a
 * messages() reader now or within READER_GRACE).
 */
export class MoltEvents extends EventTarget {
  private messageListeners = 0
  /** 'message' listeners added with `{ passive: true }`: they watch (the CLI's message lines) and never answer */
  private readonly passiveListeners = new Set<unknown>()
  /** messages() iterators running now: the local API's stream clients, SDK readers */
  private readers = 0
  /** When the last reader stopped (performance.now()): a stream client reconnecting within READER_GRACE still counts */
  private readerLeftAt = -Infinity
  /** addEventListener's wrappers (see guarded()): listener → type → wrapper */
  private readonly guards = new WeakMap<object, Map<string, (evt: Event) => void>>()
  private stopped = false
  private log?: Logger
  /** `this` of listeners: the node the application added them to */
  owner?: object

  /** Listener errors are logged here once libp2p (and its logger) exists */
  useLogger (logger: ComponentLogger): void {
    this.log = logger.forComponent('molt:node')
  }

  override addEventListener (type: string, listener: any, options?: boolean | { once?: boolean, signal?: AbortSignal, passive?: boolean }): void {
    if (type === 'message') {
      this.messageListeners++
      if (typeof options === 'object' && options.passive === true) this.passiveListeners.add(listener)
    }
    super.addEventListener(type, listener == null ? listener : this.guarded(type, listener), options)
  }

  override removeEventListener (type: string, listener: any, options?: boolean | EventListenerOptions): void {
    if (type === 'message') {
      this.messageListeners = Math.max(0, this.messageListeners - 1)
      this.passiveListeners.delete(listener)
    }
    super.removeEventListener(type, listener == null ? listener : this.guards.get(listener)?.get(type) ?? listener, options)
  }

  /** Whether a `message` event would reach anyone */
  hasMessageListeners (): boolean {
    return this.messageListeners > 0
  }

  /** Whether anything may answer requests without a handler: a non-passive listener or a messages() reader (now or just gone) */
  hasReader (): boolean {
    return this.messageListeners > this.passiveListeners.size || this.readers > 0 || performance.now() - this.readerLeftAt < READER_GRACE
  }

  readerStarted (): void {
    this.readers++
  }

  readerStopped (): void {
    this.readers--
    this.readerLeftAt = performance.now()
  }

  get isStopped (): boolean {
    return this.stopped
  }

  /** The node stops: readers and waiters are woken by `stop` */
  stop (): void {
    if (this.stopped) return
    this.stopped = true
    this.dispatchEvent(new Event('stop'))
  }

  /**
   * The listener wrapped so that a throw (or a rejected promise) is logged,
   * never fatal: Node's EventTarget rethrows a listener's error as an uncaught
   * exception, so one bad message would take the process down. One wrapper per
   * listener and type, so removal and de-duplication still work.
   */
  private guarded (type: string, listener: Listener): (evt: Event) => void {
    let byType = this.guards.get(listener)
    if (byType == null) this.guards.set(listener, byType = new Map())
    let guard = byType.get(type)
    if (guard == null) {
      const report = (err: unknown): void => { this.listenerFailed(type, err) }
      guard = (evt: Event): void => {
        try {
          const result: unknown = typeof listener === 'function' ? listener.call(this.owner ?? this, evt) : listener.handleEvent(evt)
          if (result instanceof Promise) result.catch(report)
        } catch (err) {
          report(err)
        }
      }
      byType.set(type, guard)
    }
    return guard
  }

  private listenerFailed (type: string, err: unknown): void {
    try {
      this.log?.error('a %s event listener threw - %e', type, err)
    } catch {}
  }
}
