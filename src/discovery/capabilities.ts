import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import type { ContentRouting, Logger, PeerId } from '@libp2p/interface'
import { ADVERTISE_RETRY_MAX, ADVERTISE_RETRY_MIN, ADVERTISE_TIMEOUT, CAPABILITY_KEY_PREFIX } from './constants.js'
import { publishQueue } from './publish-queue.js'
import { PlacementWatch, type ClosestPeersTable, type PlacementInit } from './placement.js'

/** The DHT key a capability is advertised under */
export async function capabilityCid (name: string): Promise<CID> {
  const digest = await sha256.digest(new TextEncoder().encode(CAPABILITY_KEY_PREFIX + name))
  return CID.createV1(raw.code, digest)
}

/** What the advertiser uses: content routing to provide, the DHT (if any) to cancel and watch */
export interface AdvertiserComponents {
  contentRouting: ContentRouting
  readonly dht?: unknown
}

interface DhtWithCancel {
  cancelReprovide(key: CID): Promise<void>
  /** kad-dht's own provide: its events say which servers stored the advert */
  provide?(key: CID, options?: { signal?: AbortSignal }): AsyncIterable<{ name: string, messageName?: string, from?: PeerId }>
  routingTable?: ClosestPeersTable
}

/**
 * Keeps this node's capabilities advertised as DHT provider records: provides
 * each one (retrying with backoff while the routing table is still empty),
 * lets the DHT re-provide before expiry, and withdraws removed ones.
 */
export class CapabilityAdvertiser {
  private advertised = new Set<string>()
  private readonly retries = new Map<string, ReturnType<typeof setTimeout>>()
  /** capabilities whose advert is queued or running: a misplacement trigger meanwhile adds nothing */
  private readonly pending = new Set<string>()
  private readonly controller = new AbortController()
  /** advertises a capability again when its advert is not on the closest servers the node now knows */
  private readonly placement: PlacementWatch

  /** `placement`: when an advert counts as misplaced (defaults: src/discovery/constants.ts) */
  constructor (private readonly components: AdvertiserComponents, private readonly log: Logger, init: { placement?: PlacementInit } = {}) {
    // A record is stored on the closest peers the provider knows *at that moment*: one advertised while the
    // network was still forming goes out again once the closest it knows are others (see PlacementWatch)
    this.placement = new PlacementWatch(this.dht?.routingTable, (name) => {
      // one waiting for its retry, or queued, reports where it went when it is over
      if (!this.advertised.has(name) || this.retries.has(name) || this.pending.has(name)) return
      this.log('advert of %s not on the closest DHT servers known now (%d of them lack it), advertising it again', name, this.placement.misses(name))
      this.provide(name, ADVERTISE_RETRY_MIN)
    }, init.placement)
    this.placement.start()
  }

  private get dht (): DhtWithCancel | undefined {
    return this.components.dht as DhtWithCancel | undefined
  }

  /** Advertise exactly `capabilities`: new ones are provided, dropped ones withdrawn */
  async update (capabilities: string[]): Promise<void> {
    const previous = this.advertised
    this.advertised = new Set(capabilities)
    for (const name of previous) {
      if (!this.advertised.has(name)) await this.withdraw(name)
    }
    for (const name of this.advertised) {
      if (!previous.has(name)) this.provide(name, ADVERTISE_RETRY_MIN)
    }
  }

  get current (): string[] {
    return [...this.advertised]
  }

  stop (): void {
    this.controller.abort()
    this.placement.stop()
    for (const timer of this.retries.values()) clearTimeout(timer)
    this.retries.clear()
  }

  private provide (name: string, delay: number): void {
    const attempt = async (): Promise<void> => {
      this.retries.delete(name)
      if (this.controller.signal.aborted || !this.advertised.has(name) || this.pending.has(name)) return
      this.pending.add(name)
      this.placement.publishing(name)
      const cid = await capabilityCid(name)
      const reached = await this.advertise(cid).finally(() => this.pending.delete(name))
      // (without kad-dht's provide nothing says where it went)
      if (this.advertised.has(name) && this.dht?.provide != null) this.placement.published(name, cid.multihash.bytes, reached.holders)
      if (this.controller.signal.aborted) return
      // none reached from an empty table: the first peer calls for the next (PlacementWatch); none
      // reached otherwise (every server failed, or out of time): retry, backing off
      if (reached.servers > 0 || (reached.error == null && (this.dht?.routingTable?.size ?? 0) === 0)) {
        this.log('advertised capability %s to %d DHT servers', name, reached.servers)
      } else {
        this.log('could not advertise %s yet (%s), retrying in %d ms', name, reached.error?.message ?? 'no server stored it', delay)
        this.retries.set(name, setTimeout(() => { this.provide(name, Math.min(delay * 2, ADVERTISE_RETRY_MAX)) }, delay).unref())
      }
    }
    attempt().catch(() => {})
  }

  /**
   * One advert, bounded in time: the number of servers that stored it (what a
   * walk cut short reached still counts), and the error that ended it, if any.
   * Without kad-dht's own provide (another content router) the count is the
   * routing table's size.
   */
  private async advertise (cid: CID): Promise<{ servers: number, holders: PeerId[], error?: Error }> {
    let servers = 0
    const holders: PeerId[] = []
    const advert = async (): Promise<{ servers: number, holders: PeerId[] }> => {
      // the time bound starts with the walk, not while it waits its turn
      const signal = AbortSignal.any([this.controller.signal, AbortSignal.timeout(ADVERTISE_TIMEOUT)])
      if (this.dht?.provide == null) {
        await this.components.contentRouting.provide(cid, { signal })
        return { servers: this.dht?.routingTable?.size ?? 0, holders }
      }
      for await (const event of this.dht.provide(cid, { signal })) {
        if (event.name === 'PEER_RESPONSE' && event.messageName === 'ADD_PROVIDER') {
          servers++
          if (event.from != null) holders.push(event.from)
        }
      }
      return { servers, holders }
    }
    try {
      // one walk at a time per node, shared with its routing record (src/discovery/publish-queue.ts)
      return this.dht == null ? await advert() : await publishQueue(this.dht).run(advert, { signal: this.controller.signal })
    } catch (err: any) {
      return { servers, holders, error: err }
    }
  }

  private async withdraw (name: string): Promise<void> {
    clearTimeout(this.retries.get(name))
    this.retries.delete(name)
    this.placement.forget(name)
    try {
      // stops re-providing and removes our own record; peers' copies expire on their own
      await this.dht?.cancelReprovide(await capabilityCid(name))
    } catch (err: any) {
      this.log.error('could not withdraw capability %s - %e', name, err)
    }
  }
}
