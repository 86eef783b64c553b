import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import type { ContentRouting, Logger } from '@libp2p/interface'
import { ADVERTISE_RETRY_MAX, ADVERTISE_RETRY_MIN, CAPABILITY_KEY_PREFIX } from './constants.js'
import { RoutingTableGrowth } from './dht-ready.js'

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
  routingTable?: EventTarget & { size: number }
}

/**
 * Keeps this node's capabilities advertised as DHT provider records: provides
 * each one (retrying with backoff while the routing table is still empty),
 * lets the DHT re-provide before expiry, and withdraws removed ones.
 */
export class CapabilityAdvertiser {
  private advertised = new Set<string>()
  private readonly retries = new Map<string, ReturnType<typeof setTimeout>>()
  private readonly controller = new AbortController()
  /** advertises again when the network grew (see RoutingTableGrowth) */
  private readonly growth: RoutingTableGrowth

  constructor (private readonly components: AdvertiserComponents, private readonly log: Logger) {
    // A record is stored on the closest peers the provider knows *at that moment*: a node that advertised
    // while the network was still forming must advertise again as it learns it (see RoutingTableGrowth)
    this.growth = new RoutingTableGrowth(this.dht?.routingTable, (size) => {
      if (this.advertised.size === 0) return
      this.log('routing table grew to %d peers, advertising %d capabilities again', size, this.advertised.size)
      for (const name of this.advertised) this.provide(name, ADVERTISE_RETRY_MIN)
    })
    this.growth.start()
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
    this.growth.stop()
    for (const timer of this.retries.values()) clearTimeout(timer)
    this.retries.clear()
  }

  private provide (name: string, delay: number): void {
    const attempt = async (): Promise<void> => {
      this.retries.delete(name)
      if (this.controller.signal.aborted || !this.advertised.has(name)) return
      try {
        await this.components.contentRouting.provide(await capabilityCid(name), { signal: this.controller.signal })
        // the walk filled the routing table: growth beyond this is what calls for a re-advert
        this.growth.published()
        this.log('advertised capability %s', name)
      } catch (err: any) {
        if (this.controller.signal.aborted) return
        this.log('could not advertise %s yet (%s), retrying in %d ms', name, err.message, delay)
        this.retries.set(name, setTimeout(() => { this.provide(name, Math.min(delay * 2, ADVERTISE_RETRY_MAX)) }, delay).unref())
      }
    }
    attempt().catch(() => {})
  }

  private async withdraw (name: string): Promise<void> {
    clearTimeout(this.retries.get(name))
    this.retries.delete(name)
    try {
      // stops re-providing and removes our own record; peers' copies expire on their own
      await this.dht?.cancelReprovide(await capabilityCid(name))
    } catch (err: any) {
      this.log.error('could not withdraw capability %s - %e', name, err)
    }
  }
}
