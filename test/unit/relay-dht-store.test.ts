import { describe, it, expect, afterEach } from 'vitest'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { defaultLogger } from '@libp2p/logger'
import { Libp2pRecord } from '@libp2p/record'
import { Key } from 'interface-datastore'
import * as varint from 'uint8-varint'
import { toString as uint8ArrayToString } from 'uint8arrays/to-string'
import type { Ed25519PrivateKey } from '@libp2p/interface'
import { openDatabase, type Database } from '../../src/storage/index.js'
import { DhtStore } from '../../src/relay/dht-store.js'
import { encodeRouteRecord, routeKey, signRouteRecord, type UnsignedRouteRecord } from '../../src/services/routing-record/index.js'
import { hour } from '../../src/constants.js'

const log = defaultLogger().forComponent('test:dht-store')
let dir: string
let db: Database | undefined

afterEach(async () => {
  await db?.close()
  db = undefined
  await rm(dir, { recursive: true, force: true })
})

async function open (init: ConstructorParameters<typeof DhtStore>[1] = {}): Promise<DhtStore> {
  await db?.close()
  db = await openDatabase(join(dir, 'db'))
  const store = new DhtStore(db, init)
  await store.open(log)
  return store
}

async function fresh (init: ConstructorParameters<typeof DhtStore>[1] = {}): Promise<DhtStore> {
  dir = await mkdtemp(join(tmpdir(), 'molt-dht-store-'))
  return open(init)
}

/** What kad-dht writes for a PUT_VALUE of `key`'s routing record: the datastore key and the record wrapper */
async function routeEntry (key: Ed25519PrivateKey, fields: Partial<UnsignedRouteRecord> = {}, signer: Ed25519PrivateKey = key, received = new Date()): Promise<{ dsKey: Key, value: Uint8Array }> {
  const peer = peerIdFromPrivateKey(key)
  const now = Date.now()
  const record = await signRouteRecord({ peer: peer.toString(), seq: now, exp: now + 24 * hour, addrs: [], circuits: [], mailboxes: [], ...fields }, signer)
  const dhtKey = routeKey(peer)
  return {
    dsKey: new Key(`/dht/record/${uint8ArrayToString(dhtKey, 'base32')}`, false),
    value: new Libp2pRecord(dhtKey, encodeRouteRecord(record), received).serialize()
  }
}

async function keys (source: AsyncIterable<{ key: Key }> | Iterable<{ key: Key }>): Promise<string[]> {
  const found: string[] = []
  for await (const { key } of source) found.push(key.toString())
  return found
}

const providerKey = (n: number): Key => new Key(`/dht/provider/ciqcapability${n}/12D3KooWProvider${n}`)

describe('the relay\'s persistent DHT store', () => {
  it('keeps routing records and provider entries across a reopen; other keys stay in memory', async () => {
    let store = await fresh()
    const agent = await routeEntry(await generateKeyPair('Ed25519'))
    await store.put(agent.dsKey, agent.value)
    await store.put(providerKey(1), varint.encode(Date.now()))
    await store.put(new Key('/peers/somebody'), new Uint8Array([1]))
    await store.close()

    store = await open()
    await store.verified()
    expect(store.stats()).toMatchObject({ records: 1, providers: 1, dropped: 0 })
    expect(await store.get(agent.dsKey)).toEqual(agent.value)
    expect(await keys(store.query({ prefix: '/dht/provider/ciqcapability1' }))).toEqual([providerKey(1).toString()])
    expect(await store.has(new Key('/peers/somebody'))).toBe(false)
    await store.close()
  })

  it('drops at open a record whose signature is not by the PeerId its key names, or that was tampered with', async () => {
    let store = await fresh()
    const key = await generateKeyPair('Ed25519')
    const forged = await routeEntry(key, {}, await generateKeyPair('Ed25519'))
    const genuine = await routeEntry(await generateKeyPair('Ed25519'))
    const moved = await routeEntry(await generateKeyPair('Ed25519'))
    // written straight to disk, as a corrupted or edited data dir would hold them
    const table = db!.sublevel<string, Uint8Array>('dht', { keyEncoding: 'utf8', valueEncoding: 'view' })
    await table.put(forged.dsKey.toString(), forged.value)
    await table.put(genuine.dsKey.toString(), genuine.value)
    await table.put(moved.dsKey.toString(), genuine.value) // a valid record under another agent's key
    await store.close()

    // read at once, before the background validation can have reached them: checked on demand
    store = await open()
    await expect(store.get(forged.dsKey)).rejects.toMatchObject({ name: 'NotFoundError' })
    await expect(store.get(moved.dsKey)).rejects.toMatchObject({ name: 'NotFoundError' })
    expect(await store.get(genuine.dsKey)).toEqual(genuine.value)
    await store.verified()
    expect(store.stats()).toMatchObject({ records: 1, dropped: 2 })
    await store.close()

    // left to the background validation alone
    store = await open()
    await store.verified()
    expect(store.stats()).toMatchObject({ records: 1, dropped: 0 })
    await store.close()
  })

  it('never returns an expired entry: a record past its exp or received over 48 h ago, a provider entry past its validity', async () => {
    const store = await fresh({ providerValidity: hour })
    const now = Date.now()
    const lapsed = await routeEntry(await generateKeyPair('Ed25519'), { seq: now - 2 * hour, exp: now - hour })
    const old = await routeEntry(await generateKeyPair('Ed25519'), {}, undefined, new Date(now - 49 * hour))
    await store.put(lapsed.dsKey, lapsed.value)
    await store.put(old.dsKey, old.value)
    await store.put(providerKey(1), varint.encode(now - 2 * hour))
    await store.put(providerKey(2), varint.encode(now))
    await expect(store.get(lapsed.dsKey)).rejects.toMatchObject({ name: 'NotFoundError' })
    expect(await store.has(old.dsKey)).toBe(false)
    expect(await keys(store.query({ prefix: '/dht/provider' }))).toEqual([providerKey(2).toString()])
    await store.close()

    const reopened = await open({ providerValidity: hour })
    await reopened.verified()
    expect(reopened.stats()).toMatchObject({ records: 0, providers: 1 })
    await reopened.close()
  })

  it('refuses new keys over its limits (DhtStoreFullError), takes updates of held ones, and values over 16 KiB', async () => {
    const store = await fresh({ maxRecords: 1, maxProviders: 1 })
    const key = await generateKeyPair('Ed25519')
    const first = await routeEntry(key)
    const second = await routeEntry(await generateKeyPair('Ed25519'))
    await store.put(first.dsKey, first.value)
    await expect(store.put(second.dsKey, second.value)).rejects.toMatchObject({ name: 'DhtStoreFullError' })
    const update = await routeEntry(key, { seq: Date.now() + 1 })
    await store.put(first.dsKey, update.value)
    expect(await store.get(first.dsKey)).toEqual(update.value)

    await store.put(providerKey(1), varint.encode(Date.now()))
    await expect(store.put(providerKey(2), varint.encode(Date.now()))).rejects.toMatchObject({ name: 'DhtStoreFullError' })
    await store.delete(providerKey(1))
    await store.put(providerKey(2), varint.encode(Date.now()))
    await expect(store.put(first.dsKey, new Uint8Array(16 * 1024 + 1))).rejects.toMatchObject({ name: 'DhtStoreFullError' })
    expect(store.stats()).toMatchObject({ records: 1, providers: 1, refused: 3 })
    await store.close()
  })
})
