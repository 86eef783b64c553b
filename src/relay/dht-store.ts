import { BaseDatastore } from 'datastore-core/base'
import { MemoryDatastore } from 'datastore-core/memory'
import { Key, type Pair, type Query, type KeyQuery } from 'interface-datastore'
import { NotFoundError, type AbortOptions, type Logger } from '@libp2p/interface'
import { Libp2pRecord } from '@libp2p/record'
import * as varint from 'uint8-varint'
import { fromString as uint8ArrayFromString } from 'uint8arrays/from-string'
import { equals as uint8ArrayEquals } from 'uint8arrays/equals'
import { writeGuarded, type Database } from '../storage/index.js'
import { parseRouteRecord, validateRouteRecord } from '../services/routing-record/index.js'
import { DHT_DATASTORE_PREFIX, PROVIDER_VALIDITY } from '../discovery/constants.js'
import { DhtStoreFullError } from './errors.js'
import * as c from './constants.js'

export interface DhtStoreLimitsInit {
  /** Routing records kept at once. @default DHT_STORE_MAX_RECORDS (50,000) */
  maxRecords?: number
  /** Provider entries (capability adverts: one per provider and key) kept at once. @default DHT_STORE_MAX_PROVIDERS (200,000) */
  maxProviders?: number
}

export interface DhtStoreInit extends DhtStoreLimitsInit {
  /** How long a provider entry lasts after it was written, ms (the DHT's `providerValidity`). @default 48 h */
  providerValidity?: number
}

export interface DhtStoreStats {
  records: number
  providers: number
  /** Entries refused since start because a limit was reached */
  refused: number
  /** Entries dropped since start because they had expired or failed validation */
  dropped: number
}

type Kind = 'record' | 'provider'

/** The `dht` sublevel: datastore key string → value bytes */
function openTable (db: Database) {
  return db.sublevel<string, Uint8Array>('dht', { keyEncoding: 'utf8', valueEncoding: 'view' })
}

const ROUTE_KEY_PREFIX = new TextEncoder().encode('/molt-route/')
const RECORD_PREFIX = `${DHT_DATASTORE_PREFIX}/record/`
const PROVIDER_PREFIX = `${DHT_DATASTORE_PREFIX}/provider/`

/**
 * The relay's libp2p datastore. kad-dht keeps what a DHT server stores for
 * others — routing records (`/dht/record/…`) and provider records
 * (`/dht/provider/…`) — in the libp2p datastore, by default in memory: a
 * relay restart lost every offline agent's record, and with it the only way a
 * never-met sender finds that agent's mailbox relay until the agent
 * republishes. This keeps those two kinds in a sublevel of the relay's
 * LevelDB, bounded in number (a full store refuses new keys; overwrites pass),
 * and honours expiry: an expired entry is never returned, and a sweep
 * deletes it (every hour). Records loaded from disk are validated again
 * (signature, key, expiry) before any is served: in the background after
 * open, and at once for any record read before the background gets to it —
 * so a large store does not hold up the relay's start.
 * Everything else libp2p keeps (peer store, …) stays in memory as before.
 */
export class DhtStore extends BaseDatastore {
  private readonly table: ReturnType<typeof openTable>
  private readonly memory = new MemoryDatastore()
  private readonly limits: Record<Kind, number>
  private readonly counts: Record<Kind, number> = { record: 0, provider: 0 }
  /** Keys being inserted now: a second put of one of them is not a new entry */
  private readonly inserting = new Set<string>()
  private readonly providerValidity: number
  private log?: Logger
  private refused = 0
  private dropped = 0
  private timer?: ReturnType<typeof setTimeout>
  private sweeping?: Promise<void>
  private closed = false
  /** Routing records loaded from disk and not yet validated again (none once the load-time sweep is over) */
  private unverified?: Set<string>
  /** Validations under way, so a read waits for the one the sweep started */
  private readonly checking = new Map<string, Promise<void>>()

  constructor (private readonly db: Database, init: DhtStoreInit) {
    super()
    this.table = openTable(db)
    this.limits = { record: init.maxRecords ?? c.DHT_STORE_MAX_RECORDS, provider: init.maxProviders ?? c.DHT_STORE_MAX_PROVIDERS }
    this.providerValidity = init.providerValidity ?? PROVIDER_VALIDITY
  }

  /**
   * Count what the data dir holds (keys only: fast), then validate it in the
   * background, dropping what is expired or invalid; the hourly sweep follows
   */
  async open (log: Logger): Promise<void> {
    this.log = log
    const unverified = new Set<string>()
    for await (const name of this.table.keys()) {
      const kind = kindOf(name)
      if (kind !== undefined) this.counts[kind]++
      if (kind === 'record') unverified.add(name)
    }
    this.unverified = unverified
    log('dht store: %d routing records, %d provider entries in the data dir', this.counts.record, this.counts.provider)
    this.sweeping = this.sweep()
      .then(() => { log('dht store: data dir validated; %d routing records, %d provider entries kept', this.counts.record, this.counts.provider) })
      .catch((err) => { log.error('dht store: validating the data dir failed - %e', err) })
      .finally(() => { this.schedule() })
  }

  /** Resolves once the load-time validation is over (or failed, or the store closed) */
  async verified (): Promise<void> {
    await this.sweeping
  }

  async close (): Promise<void> {
    this.closed = true
    clearTimeout(this.timer)
    await this.sweeping
    await Promise.all(this.checking.values())
  }

  stats (): DhtStoreStats {
    return { records: this.counts.record, providers: this.counts.provider, refused: this.refused, dropped: this.dropped }
  }

  override async put (key: Key, value: Uint8Array, options?: AbortOptions): Promise<Key> {
    const kind = kindOf(key)
    if (kind === undefined) return this.memory.put(key, value, options)
    const name = key.toString()
    if (value.byteLength > c.DHT_STORE_MAX_VALUE_BYTES) {
      this.refused++
      throw new DhtStoreFullError(`${kind} of ${value.byteLength} bytes is over ${c.DHT_STORE_MAX_VALUE_BYTES}`)
    }
    const isNew = !this.inserting.has(name) && !(await this.exists(name))
    if (isNew && this.counts[kind] >= this.limits[kind]) {
      this.refused++
      throw new DhtStoreFullError(`the relay keeps at most ${this.limits[kind]} ${kind === 'record' ? 'routing records' : 'provider entries'}`)
    }
    if (isNew) {
      this.counts[kind]++
      this.inserting.add(name)
    }
    // kad-dht validated this value (PUT_VALUE), or it is the relay's own
    this.unverified?.delete(name)
    try {
      await writeGuarded(this.db, async () => this.table.put(name, value))
    } catch (err) {
      if (isNew) this.counts[kind]--
      throw err
    } finally {
      if (isNew) this.inserting.delete(name)
    }
    return key
  }

  override async get (key: Key, options?: AbortOptions): Promise<Uint8Array> {
    const kind = kindOf(key)
    if (kind === undefined) return this.memory.get(key, options)
    if (kind === 'record') await this.check(key.toString())
    const stored = await this.table.get(key.toString())
    if (stored === undefined) throw new NotFoundError(`no entry for ${key.toString()}`)
    const value = bytes(stored)
    if (expired(kind, value, Date.now(), this.providerValidity)) {
      await this.dropIfStale(key.toString(), kind)
      throw new NotFoundError(`the entry for ${key.toString()} has expired`)
    }
    return value
  }

  override async has (key: Key, options?: AbortOptions): Promise<boolean> {
    if (kindOf(key) === undefined) return this.memory.has(key, options)
    try {
      await this.get(key)
      return true
    } catch (err: any) {
      if (err.name === 'NotFoundError') return false
      throw err
    }
  }

  override async delete (key: Key, options?: AbortOptions): Promise<void> {
    const kind = kindOf(key)
    if (kind === undefined) { await this.memory.delete(key, options); return }
    const name = key.toString()
    if (!(await this.exists(name))) return
    await writeGuarded(this.db, async () => this.table.del(name))
    this.counts[kind] = Math.max(0, this.counts[kind] - 1)
  }

  override async * _all (q: Query, options?: AbortOptions): AsyncGenerator<Pair> {
    const prefix = q.prefix ?? ''
    yield * this.memory.query({ prefix }, options)
    const now = Date.now()
    for await (const [name, read] of this.entries(prefix)) {
      options?.signal?.throwIfAborted()
      const kind = kindOf(name)
      let value: Uint8Array | undefined = read
      if (kind === 'record' && this.unverified?.has(name) === true) {
        await this.check(name)
        const current = await this.table.get(name)
        value = current !== undefined ? bytes(current) : undefined
      }
      if (kind === undefined || value === undefined || expired(kind, value, now, this.providerValidity)) continue
      yield { key: new Key(name, false), value }
    }
  }

  override async * _allKeys (q: KeyQuery, options?: AbortOptions): AsyncGenerator<Key> {
    for await (const { key } of this._all({ prefix: q.prefix }, options)) yield key
  }

  /** The sublevel's entries whose key starts with `prefix` (all persisted ones when it covers both kinds) */
  private async * entries (prefix: string): AsyncGenerator<[string, Uint8Array]> {
    // only /dht/record/ and /dht/provider/ keys are stored here: skip the range scan for other prefixes
    if (!RECORD_PREFIX.startsWith(prefix) && !PROVIDER_PREFIX.startsWith(prefix) &&
      !prefix.startsWith(RECORD_PREFIX) && !prefix.startsWith(PROVIDER_PREFIX)) return
    const range = prefix === '' ? {} : { gte: prefix, lt: prefix + '\uffff' }
    for await (const [name, value] of this.table.iterator(range)) yield [name, bytes(value)]
  }

  private async exists (name: string): Promise<boolean> {
    return (await this.table.get(name)) !== undefined
  }

  /** Whether an entry may stay: not expired and, with `verify`, a routing record that validates */
  private async keep (name: string, kind: Kind | undefined, value: Uint8Array, verify: boolean): Promise<boolean> {
    if (kind === undefined || expired(kind, value, Date.now(), this.providerValidity)) return false
    return !verify || kind === 'provider' || validRecord(name, value)
  }

  /**
   * Delete an entry found stale, unless a put replaced it since it was read
   * (an agent republishing at that moment must not lose its fresh record).
   * Resolves to whether it was deleted.
   */
  private async dropIfStale (name: string, kind: Kind | undefined, verify = false): Promise<boolean> {
    const current = await this.table.get(name)
    if (current === undefined || await this.keep(name, kind, bytes(current), verify)) return false
    await writeGuarded(this.db, async () => this.table.del(name))
    if (kind !== undefined) this.counts[kind] = Math.max(0, this.counts[kind] - 1)
    this.dropped++
    return true
  }

  /**
   * Validate a routing record loaded from disk, once, as a DHT server checks a
   * PUT — a record wrapper whose key is the one it is stored under, received
   * within 48 h, holding a routing record signed by the PeerId its key names,
   * not expired — and delete it unless valid
   */
  private async check (name: string): Promise<void> {
    const under = this.checking.get(name)
    if (under !== undefined) return under
    if (this.unverified?.has(name) !== true) return
    const checked = this.dropIfStale(name, 'record', true)
      .then(() => {}, (err: Error) => { this.log?.error('dht store: could not validate %s - %e', name, err) })
      .finally(() => {
        this.unverified?.delete(name)
        this.checking.delete(name)
      })
    this.checking.set(name, checked)
    return checked
  }

  /** Delete every expired entry; the first sweep after open also validates the records loaded from disk */
  private async sweep (): Promise<void> {
    const stale: Array<[string, Kind | undefined]> = []
    for await (const [name, value] of this.entries('')) {
      if (this.closed) return
      const kind = kindOf(name)
      if (kind === 'record' && this.unverified?.has(name) === true) await this.check(name)
      else if (!(await this.keep(name, kind, value, false))) stale.push([name, kind])
    }
    // every record on disk at open was met above (the iterator reads a snapshot); later ones came through put()
    this.unverified = undefined
    let dropped = 0
    for (const [name, kind] of stale) if (await this.dropIfStale(name, kind)) dropped++
    if (dropped > 0) this.log?.('dht store: dropped %d expired entries', dropped)
  }

  private schedule (): void {
    if (this.closed) return
    this.timer = setTimeout(() => {
      this.sweeping = this.sweep()
        .catch((err) => { this.log?.error('dht store: sweep failed - %e', err) })
        .finally(() => { this.schedule() })
    }, c.DHT_STORE_SWEEP_INTERVAL)
    this.timer.unref?.()
  }
}

/** Which persisted kind a datastore key is: a routing record, a provider entry, or neither (kept in memory) */
function kindOf (key: Key | string): Kind | undefined {
  const name = key.toString()
  if (name.startsWith(PROVIDER_PREFIX)) return 'provider'
  if (!name.startsWith(RECORD_PREFIX)) return undefined
  try {
    const bytes = uint8ArrayFromString(name.slice(RECORD_PREFIX.length), 'base32')
    return startsWith(bytes, ROUTE_KEY_PREFIX) ? 'record' : undefined
  } catch {
    return undefined
  }
}

/** Past its validity: a provider entry `providerValidity` after it was written; a record received over 48 h ago (kad-dht's rule) or past its own `exp` */
function expired (kind: Kind, value: Uint8Array, now: number, providerValidity: number): boolean {
  try {
    if (kind === 'provider') return varint.decode(value) + providerValidity < now
    const record = Libp2pRecord.deserialize(value)
    if (now - record.timeReceived.getTime() > c.DHT_RECORD_MAX_AGE) return true
    return parseRouteRecord(record.value).exp <= now
  } catch {
    return true
  }
}

async function validRecord (name: string, value: Uint8Array): Promise<boolean> {
  try {
    const record = Libp2pRecord.deserialize(value)
    if (!uint8ArrayEquals(uint8ArrayFromString(name.slice(RECORD_PREFIX.length), 'base32'), record.key)) return false
    await validateRouteRecord(record.key, record.value)
    return true
  } catch {
    return false
  }
}

/** classic-level hands out Buffers: give callers a plain Uint8Array view of the same bytes */
function bytes (value: Uint8Array): Uint8Array {
  return value.constructor === Uint8Array ? value : new Uint8Array(value.buffer, value.byteOffset, value.byteLength)
}

function startsWith (bytes: Uint8Array, prefix: Uint8Array): boolean {
  return bytes.byteLength > prefix.byteLength && prefix.every((byte, i) => bytes[i] === byte)
}
