import { writeGuarded, type Database } from '../../storage/index.js'
import * as c from './constants.js'

export interface RegistryLimits {
  /** How long a registration lasts after the recipient's last reservation or mailbox session, ms */
  retentionMs: number
  /** Recipients registered at once (least recently seen forgotten first) */
  maxRegistrations: number
  /** Recipients registered from one source address (IPv4 address or IPv6 /64) */
  maxRegistrationsPerSource: number
}

interface Registration { at: number, source: string, persistedAt: number }

/**
 * Who a relay keeps a mailbox for, and whom each recipient already knows
 * (protocols/mailbox.md "Registration", "First contact").
 *
 * A recipient is registered while it held a reservation with this relay, or
 * opened a mailbox session (fetch, watch, ack, purge), within the retention
 * period: deposits for anyone else are refused `unknown-recipient`, so made-up
 * PeerIds cannot fill the relay. A sender is a recipient's *contact* once the
 * recipient acknowledged a box of it that opened and verified; others are first-contact senders, held to a
 * small share of the recipient's quota. Both live in LevelDB (a restarted
 * relay still knows them) and in memory, in least-recently-seen order, bounded.
 */
export class MailboxRegistry {
  private readonly registered: ReturnType<Database['sublevel']>
  private readonly known: ReturnType<Database['sublevel']>
  private readonly recipients = new Map<string, Registration>()
  private readonly perSource = new Map<string, number>()
  private readonly contacts = new Map<string, number>()
  private readonly writes = new Set<Promise<void>>()

  constructor (private readonly db: Database, private readonly limits: RegistryLimits, private readonly onError: (err: Error) => void = () => {}) {
    this.registered = db.sublevel('mailbox-registered', { keyEncoding: 'utf8', valueEncoding: 'utf8' })
    this.known = db.sublevel('mailbox-contacts', { keyEncoding: 'utf8', valueEncoding: 'utf8' })
  }

  async open (now = Date.now()): Promise<void> {
    const loaded: Array<[string, Registration]> = []
    for await (const [peer, value] of this.registered.iterator()) {
      const { at, source } = JSON.parse(value as string) as { at: number, source: string }
      if (at + this.limits.retentionMs > now) loaded.push([peer as string, { at, source, persistedAt: at }])
    }
    // oldest first, so the map's order is least recently seen first
    for (const [peer, registration] of loaded.sort((a, b) => a[1].at - b[1].at)) this.add(peer, registration)
    // a relay restarted with a lower limit keeps the most recently seen
    while (this.recipients.size > this.limits.maxRegistrations) this.drop(this.recipients.keys().next().value as string)
    const contacts: Array<[string, number]> = []
    for await (const [key, value] of this.known.iterator()) {
      const at = Number(value)
      if (at + c.CONTACT_TTL > now) contacts.push([key as string, at])
    }
    for (const [key, at] of contacts.sort((a, b) => a[1] - b[1])) this.contacts.set(key, at)
    while (this.contacts.size > c.MAX_CONTACTS) this.contacts.delete(this.contacts.keys().next().value as string)
  }

  /** Waits for registrations still being written */
  async close (): Promise<void> {
    await Promise.allSettled([...this.writes])
  }

  get size (): number {
    return this.recipients.size
  }

  isRegistered (peer: string, now = Date.now()): boolean {
    const registration = this.recipients.get(peer)
    return registration !== undefined && registration.at + this.limits.retentionMs > now
  }

  /**
   * `peer` reserved a slot or opened a mailbox session from `source`. Written
   * to disk at most once per REGISTRATION_REFRESH per peer (not awaited: a
   * registration lost to a crash is renewed by the peer's next session).
   */
  register (peer: string, source: string, now = Date.now()): void {
    const existing = this.recipients.get(peer)
    if (existing !== undefined) {
      this.recipients.delete(peer) // re-inserted below: most recently seen last
      existing.at = now
      this.recipients.set(peer, existing)
      if (now - existing.persistedAt < c.REGISTRATION_REFRESH) return
      existing.persistedAt = now
      this.persist(peer, existing)
      return
    }
    // one address cannot register more than its share (free identities from one host)
    if ((this.perSource.get(source) ?? 0) >= this.limits.maxRegistrationsPerSource) return
    const registration = { at: now, source, persistedAt: now }
    this.add(peer, registration)
    this.persist(peer, registration)
    while (this.recipients.size > this.limits.maxRegistrations) {
      const [oldest] = this.recipients.keys()
      this.drop(oldest)
    }
  }

  /** Did `recipient` receive a message of `sender`'s through this relay (within CONTACT_TTL)? */
  knows (recipient: string, sender: string, now = Date.now()): boolean {
    const at = this.contacts.get(`${recipient}!${sender}`)
    return at !== undefined && at + c.CONTACT_TTL > now
  }

  /** `recipient` opened and kept boxes of `senders`: they are its contacts from now on */
  meet (recipient: string, senders: Iterable<string>, now = Date.now()): void {
    const ops: Array<{ type: 'put', key: string, value: string }> = []
    for (const sender of senders) {
      const key = `${recipient}!${sender}`
      const at = this.contacts.get(key)
      this.contacts.delete(key)
      this.contacts.set(key, now)
      if (at === undefined || now - at >= c.REGISTRATION_REFRESH) ops.push({ type: 'put', key, value: String(now) })
    }
    while (this.contacts.size > c.MAX_CONTACTS) {
      const [oldest] = this.contacts.keys()
      this.contacts.delete(oldest)
      ops.push({ type: 'del', key: oldest } as any)
    }
    if (ops.length > 0) this.track(async () => this.known.batch(ops as any))
  }

  /** `recipient` purged `sender`: its next box is a first contact again */
  forget (recipient: string, sender: string): void {
    const key = `${recipient}!${sender}`
    if (this.contacts.delete(key)) this.track(async () => this.known.del(key))
  }

  /** Forget registrations and contacts past their time; returns how many registrations ended */
  sweep (now = Date.now()): number {
    let ended = 0
    for (const [peer, registration] of this.recipients) {
      // least recently seen first: stop at the first still valid
      if (registration.at + this.limits.retentionMs > now) break
      this.drop(peer)
      ended++
    }
    const stale: string[] = []
    for (const [key, at] of this.contacts) {
      if (at + c.CONTACT_TTL > now) break
      stale.push(key)
    }
    for (const key of stale) this.contacts.delete(key)
    if (stale.length > 0) this.track(async () => this.known.batch(stale.map(key => ({ type: 'del', key })) as any))
    return ended
  }

  private add (peer: string, registration: Registration): void {
    this.recipients.set(peer, registration)
    this.perSource.set(registration.source, (this.perSource.get(registration.source) ?? 0) + 1)
  }

  private drop (peer: string): void {
    const registration = this.recipients.get(peer)
    if (registration === undefined) return
    this.recipients.delete(peer)
    const left = (this.perSource.get(registration.source) ?? 1) - 1
    if (left <= 0) this.perSource.delete(registration.source)
    else this.perSource.set(registration.source, left)
    this.track(async () => this.registered.del(peer))
  }

  private persist (peer: string, registration: Registration): void {
    this.track(async () => this.registered.put(peer, JSON.stringify({ at: registration.at, source: registration.source })))
  }

  /** Run a write guarded like every other (a failed one makes the database reopen first), and keep it for close() */
  private track (write: () => Promise<void>): void {
    const tracked: Promise<void> = writeGuarded(this.db, write).catch((err: Error) => { this.onError(err) }).finally(() => { this.writes.delete(tracked) })
    this.writes.add(tracked)
  }
}
