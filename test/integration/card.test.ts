import { describe, it, expect, beforeAll, afterAll, vi } from 'vitest'
import { sign } from 'node:crypto'
import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Stream } from '@libp2p/interface'
import * as varint from 'uint8-varint'
import { eventually } from '../support/eventually.js'
import { identityFromKey, type Identity } from '../../src/identity/index.js'
import { canonicalize } from '../../src/moltspeak/index.js'
import {
  cards, signCard, PROTOCOL, type CardInit, type CardProfile, type CardService, type UnsignedCard
} from '../../src/services/card/index.js'
import { encodeFrame } from '../../src/services/card/frame.js'
import { cardFields } from '../support/cards.js'

type CardNode = Libp2p<{ cards: CardService }>

const nodes: Libp2p[] = []
const hour = 3_600_000

async function rawNode (identity: Identity, services: Record<string, any> = {}): Promise<Libp2p<any>> {
  const node = await createLibp2p({
    privateKey: identity.privateKey,
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: { allow: ['/ip4/127.0.0.1'] } as any,
    services: { identify: identify(), ...services }
  })
  nodes.push(node)
  return node
}

async function cardNode (profile: () => CardProfile, init: Partial<CardInit> = {}): Promise<{ node: CardNode, identity: Identity }> {
  const identity = identityFromKey(await generateKeyPair('Ed25519'))
  const node = await rawNode(identity, { cards: cards({ identity, profile, ...init }) }) as CardNode
  return { node, identity }
}

/** Teach `from` where `to` listens, so a PeerId is enough to dial it */
async function introduce (from: Libp2p<any>, to: Libp2p<any>): Promise<void> {
  await from.peerStore.merge(to.peerId, { multiaddrs: to.getMultiaddrs() })
}

/** A card as a hostile server would forge it */
function unsigned (who: Identity, overrides: Partial<UnsignedCard> = {}): UnsignedCard {
  return cardFields(who, {
    name: 'mallory',
    org: 'evil',
    description: undefined,
    capabilities: [{ name: 'translate.text' }],
    supported_cls: ['pub'],
    addresses: [],
    expires: Date.now() + hour,
    ...overrides
  })
}

/** Sign anything, bypassing signCard's checks */
function forge (content: Record<string, unknown>, who: Identity): Record<string, unknown> {
  return { ...content, sig: 'ed25519:' + sign(null, Buffer.from(canonicalize(content)), who.signingKey).toString('base64') }
}

/** Resolves when the stream has closed (or at once if it already has) */
async function closed (stream: Stream): Promise<void> {
  if (stream.status !== 'open' && stream.status !== 'closing') return
  await new Promise(resolve => stream.addEventListener('close', resolve, { once: true }))
}

let alice: CardNode
let bob: CardNode
let bobId: Identity
let bobProfile: CardProfile

beforeAll(async () => {
  bobProfile = {
    name: 'bob',
    org: 'widgets',
    description: 'a translating agent',
    capabilities: ['translate.text', { name: 'summarise', description: 'short summaries' }, 'translate.text']
  }
  ;({ node: alice } = await cardNode(() => ({ name: 'alice', org: 'acme', capabilities: [] }), { fetchTimeout: 1000 }))
  ;({ node: bob, identity: bobId } = await cardNode(() => bobProfile))
  await introduce(alice, bob)
})

afterAll(async () => {
  await Promise.allSettled(nodes.map(async node => { await node.stop() }))
})

describe('/molt/card/1.0.0 between two nodes', () => {
  it('alice fetches bob\'s card and it verifies', async () => {
    const card = await alice.services.cards.fetch(bob.peerId)
    expect(card.peer_id).toBe(bob.peerId.toString())
    expect(card.key).toBe(bobId.moltKey)
    expect(card.did).toBe(bobId.did)
    expect(card.name).toBe('bob')
    expect(card.org).toBe('widgets')
    expect(card.description).toBe('a translating agent')
    expect(card.capabilities).toEqual([{ name: 'translate.text' }, { name: 'summarise', description: 'short summaries' }])
    expect(card.protocol_versions).toEqual(['0.1'])
    expect(card.supported_cls).toEqual(['pub', 'int', 'conf'])
    expect(card.addresses.length).toBeGreaterThan(0)
    expect(card.addresses).toEqual(bob.getMultiaddrs().map(String))
    expect(card.expires - card.issued).toBe(24 * hour)
    expect(card).toEqual(bob.services.cards.own())
    expect(alice.services.cards.cached(bob.peerId)).toBe(card)
    expect(alice.services.cards.cachedCards()).toContain(card)
    expect(Object.isFrozen(card) && Object.isFrozen(card.capabilities)).toBe(true)
  })

  it('serves from the cache until the TTL, then fetches again; force always fetches', async () => {
    const { node: carol } = await cardNode(() => ({ name: 'carol', org: 'acme', capabilities: [] }), { cacheTtl: 300 })
    await introduce(carol, bob)
    const served = (): number => bob.services.cards.stats().served
    const before = served()
    const first = await carol.services.cards.fetch(bob.peerId)
    expect(served()).toBe(before + 1)
    expect(await carol.services.cards.fetch(bob.peerId)).toBe(first)
    expect(carol.services.cards.stats()).toMatchObject({ fetched: 1, cached: 1 })
    expect(served()).toBe(before + 1)

    // the 300 ms TTL runs out
    await eventually(() => carol.services.cards.cached(bob.peerId) === undefined, 10_000, 'the cached card to expire')
    const second = await carol.services.cards.fetch(bob.peerId)
    expect(second).not.toBe(first)
    expect(second).toEqual(first) // bob did not re-sign: same card
    expect(served()).toBe(before + 2)

    const forced = await carol.services.cards.fetch(bob.peerId, { force: true })
    expect(forced).not.toBe(second)
    expect(served()).toBe(before + 3)
    expect(carol.services.cards.cached(bob.peerId)).toBe(forced)

    carol.services.cards.forget(bob.peerId)
    expect(carol.services.cards.cached(bob.peerId)).toBeUndefined()
    expect(carol.services.cards.cachedCards()).toEqual([])
  })

  it('concurrent fetches of one peer share one stream', async () => {
    const { node: dave } = await cardNode(() => ({ name: 'dave', org: 'acme', capabilities: [] }))
    await introduce(dave, bob)
    const before = bob.services.cards.stats().served
    const all = await Promise.all(Array.from({ length: 5 }, async () => dave.services.cards.fetch(bob.peerId)))
    expect(new Set(all).size).toBe(1)
    expect(bob.services.cards.stats().served).toBe(before + 1)
  })

  it('a fetch the caller aborts rejects with the caller\'s reason', async () => {
    const { node: erin } = await cardNode(() => ({ name: 'erin', org: 'acme', capabilities: [] }))
    await introduce(erin, bob)
    await expect(erin.services.cards.fetch(bob.peerId, { signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' })
    const controller = new AbortController()
    const fetching = erin.services.cards.fetch(bob.peerId, { signal: controller.signal })
    controller.abort()
    await expect(fetching).rejects.toMatchObject({ name: 'AbortError' })
    // nothing is left behind: the next fetch works
    expect((await erin.services.cards.fetch(bob.peerId)).name).toBe('bob')
  })
})

describe('own card', () => {
  it('is re-signed when the profile or addresses change, cached otherwise', async () => {
    let profile: CardProfile = { name: 'frank', org: 'acme', capabilities: ['a'] }
    let addresses = ['/ip4/127.0.0.1/tcp/1']
    const { node: frank } = await cardNode(() => profile, { addresses: () => addresses })
    const first = frank.services.cards.own()
    expect(frank.services.cards.own()).toBe(first)
    expect(first.addresses).toEqual(['/ip4/127.0.0.1/tcp/1'])

    profile = { ...profile, capabilities: ['a', 'b'] }
    const second = frank.services.cards.own()
    expect(second).not.toBe(first)
    expect(second.capabilities).toEqual([{ name: 'a' }, { name: 'b' }])

    addresses = ['/ip4/127.0.0.1/tcp/2']
    const third = frank.services.cards.own()
    expect(third.addresses).toEqual(['/ip4/127.0.0.1/tcp/2'])
    expect(frank.services.cards.own()).toBe(third)
  })

  it('is re-signed past half its validity', async () => {
    const { node: gina } = await cardNode(() => ({ name: 'gina', org: 'acme', capabilities: [] }), { validity: 200 })
    // the card's clock is Date: stepped by hand, so a slow machine cannot skip past the half-way mark
    vi.useFakeTimers({ toFake: ['Date'] })
    try {
      const first = gina.services.cards.own()
      expect(first.expires - first.issued).toBe(200)
      vi.setSystemTime(first.issued + 99)
      expect(gina.services.cards.own()).toBe(first)
      vi.setSystemTime(first.issued + 100)
      const second = gina.services.cards.own()
      expect(second).not.toBe(first)
      expect(second.issued).toBe(first.issued + 100)
      expect(second.expires).toBe(first.issued + 300)
    } finally {
      vi.useRealTimers()
    }
  })

  it('a card the node cannot sign fails the stream, not the node', async () => {
    let profile: CardProfile = { name: 'not a name', org: 'acme', capabilities: [] }
    const { node: hank } = await cardNode(() => profile)
    await introduce(alice, hank)
    expect(() => hank.services.cards.own()).toThrow(expect.objectContaining({ name: 'InvalidCardError', field: 'name' }))
    await expect(alice.services.cards.fetch(hank.peerId)).rejects.toThrow()
    expect(alice.services.cards.cached(hank.peerId)).toBeUndefined()
    profile = { ...profile, name: 'hank' }
    expect((await alice.services.cards.fetch(hank.peerId)).name).toBe('hank')
  })

  it('refuses an identity that is not the node\'s', async () => {
    const other = identityFromKey(await generateKeyPair('Ed25519'))
    const identity = identityFromKey(await generateKeyPair('Ed25519'))
    await expect(createLibp2p({
      privateKey: identity.privateKey,
      services: { cards: cards({ identity: other, profile: () => ({ name: 'x', org: 'y', capabilities: [] }) }) }
    })).rejects.toMatchObject({ name: 'InvalidParametersError' })
  })
})

describe('a malicious card server', () => {
  let mallory: Libp2p<any>
  let malloryId: Identity
  let serve: (stream: Stream) => Promise<void>

  beforeAll(async () => {
    malloryId = identityFromKey(await generateKeyPair('Ed25519'))
    mallory = await rawNode(malloryId)
    await mallory.handle(PROTOCOL, async (stream: Stream) => serve(stream), { runOnLimitedConnection: true })
    await introduce(alice, mallory)
  })

  const send = async (stream: Stream, data: Uint8Array): Promise<void> => {
    if (!stream.send(data)) await stream.onDrain()
  }
  const sendCard = async (stream: Stream, card: unknown): Promise<void> => {
    await send(stream, encodeFrame(JSON.stringify(card)))
    await stream.close()
  }

  const cases: Array<[string, () => (stream: Stream) => Promise<void>, Record<string, unknown>]> = [
    ['(a) a card signed by its key but claiming another peer_id', () => async (stream) => {
      await sendCard(stream, forge({ ...unsigned(malloryId), peer_id: bob.peerId.toString() }, malloryId))
    }, { name: 'CardMismatchError' }],
    ['(a2) its own peer_id and key with another agent\'s did', () => async (stream) => {
      await sendCard(stream, forge({ ...unsigned(malloryId), did: bobId.did }, malloryId))
    }, { name: 'CardMismatchError' }],
    ['(b) a valid card of another agent, replayed', () => async (stream) => {
      await sendCard(stream, signCard(unsigned(bobId), bobId.signingKey))
    }, { name: 'CardMismatchError' }],
    ['(c) a tampered card', () => async (stream) => {
      await sendCard(stream, { ...signCard(unsigned(malloryId), malloryId.signingKey), name: 'bob' })
    }, { name: 'CardSignatureError' }],
    ['(c2) an expired card', () => async (stream) => {
      const now = Date.now()
      await sendCard(stream, signCard(unsigned(malloryId, { issued: now - 2 * hour, expires: now - hour }), malloryId.signingKey))
    }, { name: 'CardExpiredError' }],
    ['(c3) a card issued in the future', () => async (stream) => {
      const now = Date.now()
      await sendCard(stream, signCard(unsigned(malloryId, { issued: now + hour, expires: now + 2 * hour }), malloryId.signingKey))
    }, { name: 'InvalidCardError', field: 'issued' }],
    ['(c4) a malformed card', () => async (stream) => {
      await sendCard(stream, forge({ ...unsigned(malloryId), capabilities: 'everything' }, malloryId))
    }, { name: 'InvalidCardError', field: 'capabilities' }],
    ['(d) not JSON', () => async (stream) => {
      await send(stream, encodeFrame('{"v":1, this is not json'))
      await stream.close()
    }, { name: 'InvalidCardError', field: 'card' }],
    ['(d2) not UTF-8', () => async (stream) => {
      await send(stream, Uint8Array.of(3, 0xff, 0xfe, 0xfd))
      await stream.close()
    }, { name: 'InvalidCardError', field: 'card' }],
    ['(e) a length prefix of 10 MiB', () => async (stream) => {
      await send(stream, Uint8Array.of(0x80, 0x80, 0x80, 0x05)) // varint(10 MiB)
      // then keep sending: none of it may be buffered by the fetcher
      const junk = new Uint8Array(64 * 1024).fill(0x41)
      for (let i = 0; i < 160 && stream.writeStatus === 'writable'; i++) await send(stream, junk).catch(() => {})
    }, { name: 'CardTooLargeError' }],
    ['(f) a truncated frame, then close', () => async (stream) => {
      const frame = encodeFrame(JSON.stringify(signCard(unsigned(malloryId), malloryId.signingKey)))
      await send(stream, frame.subarray(0, frame.byteLength - 10))
      await stream.close()
    }, { name: 'CardTruncatedError' }],
    ['(g) nothing, then close', () => async (stream) => {
      await stream.close()
    }, { name: 'CardTruncatedError', received: 0 }],
    ['(h) never answers', () => async (stream) => {
      await closed(stream)
    }, { name: 'CardTimeoutError' }]
  ]

  for (const [what, behaviour, error] of cases) {
    it(`${what} → ${String(error.name)}, nothing cached`, async () => {
      serve = behaviour()
      // the error names the fault (a fetch that waited for its deadline instead would be CardTimeoutError)
      await expect(alice.services.cards.fetch(mallory.peerId, { force: true })).rejects.toMatchObject(error)
      expect(alice.services.cards.cached(mallory.peerId)).toBeUndefined()
      expect(alice.services.cards.cachedCards().some(card => card.key === malloryId.moltKey)).toBe(false)
      // the card stream to mallory is gone, and alice still gets bob's card
      await eventually(() => alice.getConnections(mallory.peerId).flatMap(conn => conn.streams).every(s => s.protocol !== PROTOCOL), 10_000, 'the card stream to close')
      expect((await alice.services.cards.fetch(bob.peerId, { force: true })).name).toBe('bob')
    })
  }

  it('a well-behaved mallory is fine again', async () => {
    serve = async (stream) => { await sendCard(stream, signCard(unsigned(malloryId), malloryId.signingKey)) }
    const card = await alice.services.cards.fetch(mallory.peerId, { force: true })
    expect(card.name).toBe('mallory')
    expect(alice.services.cards.cached(mallory.peerId)).toBe(card)
  })
})

describe('a hostile client', () => {
  it('writing garbage on a card stream does not stop bob serving', async () => {
    const { node: ivan } = await cardNode(() => ({ name: 'ivan', org: 'evil', capabilities: [] }))
    await introduce(ivan, bob)
    const stream = await ivan.dialProtocol(bob.peerId, PROTOCOL, { runOnLimitedConnection: true })
    const received: Uint8Array[] = []
    stream.addEventListener('message', (evt) => { received.push(evt.data.subarray()) })
    const junk = new Uint8Array(64 * 1024).fill(0x7b)
    const writing = (async () => {
      for (let i = 0; i < 64 && stream.writeStatus === 'writable'; i++) {
        if (!stream.send(junk)) await stream.onDrain().catch(() => {})
      }
    })()
    // meanwhile bob keeps serving everyone, the hostile client included
    for (let i = 0; i < 3; i++) {
      expect((await alice.services.cards.fetch(bob.peerId, { force: true })).name).toBe('bob')
    }
    await writing
    await stream.close().catch(() => {})
    await closed(stream)
    const frame = Buffer.concat(received)
    expect(frame.byteLength).toBeGreaterThan(3)
    const length = varint.decode(frame)
    expect(frame.byteLength).toBe(varint.encodingLength(length) + length)
    expect(JSON.parse(frame.subarray(varint.encodingLength(length)).toString()).name).toBe('bob')
    expect((await alice.services.cards.fetch(bob.peerId, { force: true })).name).toBe('bob')
    expect(bob.status).toBe('started')
  })
})

describe('a client that never closes its end', () => {
  it('is cut off after the fetch timeout', async () => {
    const { node: kate } = await cardNode(() => ({ name: 'kate', org: 'acme', capabilities: [] }), { fetchTimeout: 300 })
    const { node: ivan } = await cardNode(() => ({ name: 'ivan', org: 'evil', capabilities: [] }))
    await introduce(ivan, kate)
    const stream = await ivan.dialProtocol(kate.peerId, PROTOCOL, { runOnLimitedConnection: true })
    stream.addEventListener('message', () => {})
    const started = Date.now()
    await closed(stream)
    expect(Date.now() - started).toBeGreaterThanOrEqual(250)
    expect(stream.status).toBe('reset')
    expect(kate.services.cards.stats().served).toBe(1)
    // kate serves on
    expect((await ivan.services.cards.fetch(kate.peerId)).name).toBe('kate')
  })
})

describe('stop', () => {
  it('unregisters the protocol', async () => {
    const { node: judy } = await cardNode(() => ({ name: 'judy', org: 'acme', capabilities: [] }))
    expect(judy.getProtocols()).toContain(PROTOCOL)
    await judy.stop()
    expect(judy.getProtocols()).not.toContain(PROTOCOL)
  })
})
