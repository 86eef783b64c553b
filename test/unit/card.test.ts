import { describe, it, expect, beforeAll } from 'vitest'
import { sign } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { streamPair } from '@libp2p/utils'
import { identityFromKey, type Identity } from '../../src/identity/index.js'
import { canonicalize } from '../../src/moltspeak/index.js'
import { signCard, verifyCard, type AgentCard, type UnsignedCard } from '../../src/services/card/index.js'
import { encodeFrame, readFrame } from '../../src/services/card/frame.js'
import { MAX_CARD_VALIDITY, MAX_CLOCK_SKEW } from '../../src/services/card/constants.js'
import { cardFields } from '../support/cards.js'

let a: Identity
let b: Identity

beforeAll(async () => {
  a = identityFromKey(await generateKeyPair('Ed25519'))
  b = identityFromKey(await generateKeyPair('Ed25519'))
})

const fields = cardFields

/** Sign arbitrary (possibly invalid) content the way signCard does, bypassing its checks */
function forge (content: Record<string, unknown>, who: Identity): Record<string, unknown> {
  const { sig: _sig, ...unsigned } = content
  return { ...unsigned, sig: 'ed25519:' + sign(null, Buffer.from(canonicalize(unsigned)), who.signingKey).toString('base64') }
}

function fieldOf (fn: () => unknown): { name: string, field?: string } {
  try {
    fn()
  } catch (err: any) {
    return { name: err.name, field: err.field }
  }
  throw new Error('did not throw')
}

describe('signCard / verifyCard', () => {
  it('round trips, through JSON too', () => {
    const card = signCard(fields(a), a.signingKey)
    expect(card.sig).toMatch(/^ed25519:[A-Za-z0-9+/]{86}==$/)
    expect(verifyCard(card, { peerId: a.peerId.toString() })).toBe(card)
    const parsed = JSON.parse(JSON.stringify(card))
    expect(verifyCard(parsed)).toEqual(card)
  })

  it('signs the canonical form of the card without sig', () => {
    const card = signCard(fields(a, { description: 'zoë ✓ 😀 "quoted"\n' }), a.signingKey)
    const { sig, ...unsigned } = card
    const expected = sign(null, Buffer.from(canonicalize(unsigned)), a.signingKey).toString('base64')
    expect(sig).toBe('ed25519:' + expected)
    expect(verifyCard(JSON.parse(JSON.stringify(card)))).toEqual(card)
  })

  it('leaves out an undefined description, and signs only known fields', () => {
    const card = signCard({ ...fields(a), description: undefined }, a.signingKey)
    expect('description' in card).toBe(false)
    expect(verifyCard(JSON.parse(JSON.stringify(card)))).toEqual(card)
    expect(fieldOf(() => signCard({ ...fields(a), extra: 1 } as any, a.signingKey))).toEqual({ name: 'InvalidCardError', field: 'extra' })
  })

  it('refuses to sign with a key that is not the card key', () => {
    expect(fieldOf(() => signCard(fields(a), b.signingKey)).name).toBe('CardMismatchError')
  })

  it('refuses to sign a card over 64 KiB', () => {
    const capabilities = Array.from({ length: 200 }, (_, i) => ({ name: `cap-${i}`, description: 'x'.repeat(1000) }))
    expect(fieldOf(() => signCard(fields(a, { capabilities }), a.signingKey)).name).toBe('CardTooLargeError')
  })

  it('a tampered field → CardSignatureError', () => {
    const card = signCard(fields(a), a.signingKey)
    for (const tampered of [
      { ...card, name: 'mallory' },
      { ...card, capabilities: [...card.capabilities, { name: 'admin' }] },
      { ...card, addresses: ['/ip4/127.0.0.1/tcp/6666'] },
      { ...card, expires: card.expires - 1 },
      { ...card, sig: 'ed25519:' + Buffer.alloc(64).toString('base64') }
    ]) {
      expect(fieldOf(() => verifyCard(tampered)).name).toBe('CardSignatureError')
    }
  })

  it('a card signed by key B claiming peer A → CardMismatchError', () => {
    // B signs a card carrying A's peer_id but its own key and did
    const forged = forge({ ...fields(b), peer_id: a.peerId.toString() }, b)
    expect(fieldOf(() => verifyCard(forged)).name).toBe('CardMismatchError')
    // ...or A's peer_id, key and did with B's signature
    const borrowed = forge({ ...fields(a) }, b)
    expect(fieldOf(() => verifyCard(borrowed)).name).toBe('CardSignatureError')
  })

  it('a did that is not the did of the key → CardMismatchError', () => {
    const forged = forge({ ...fields(a), did: b.did }, a)
    expect(fieldOf(() => verifyCard(forged)).name).toBe('CardMismatchError')
  })

  it('a valid card of another peer → CardMismatchError', () => {
    const card = signCard(fields(a), a.signingKey)
    expect(fieldOf(() => verifyCard(card, { peerId: b.peerId.toString() })).name).toBe('CardMismatchError')
  })

  it('expired → CardExpiredError, issued in the future → InvalidCardError(issued)', () => {
    const card = signCard(fields(a), a.signingKey)
    expect(fieldOf(() => verifyCard(card, { now: card.expires })).name).toBe('CardExpiredError')
    expect(fieldOf(() => verifyCard(card, { now: card.expires + 1 })).name).toBe('CardExpiredError')
    expect(verifyCard(card, { now: card.issued - MAX_CLOCK_SKEW })).toBe(card)
    expect(fieldOf(() => verifyCard(card, { now: card.issued - MAX_CLOCK_SKEW - 1 }))).toEqual({ name: 'InvalidCardError', field: 'issued' })
  })

  it('a validity over 7 days, or expires before issued → InvalidCardError(expires)', () => {
    const now = Date.now()
    expect(signCard(fields(a, { issued: now, expires: now + MAX_CARD_VALIDITY }), a.signingKey).expires).toBe(now + MAX_CARD_VALIDITY)
    for (const overrides of [{ expires: now + MAX_CARD_VALIDITY + 1 }, { expires: now }, { expires: now - 1 }]) {
      const forged = forge({ ...fields(a, { issued: now }), ...overrides }, a)
      expect(fieldOf(() => verifyCard(forged))).toEqual({ name: 'InvalidCardError', field: 'expires' })
    }
  })

  describe('each malformed field → InvalidCardError with its field', () => {
    const long = (n: number): string => 'a'.repeat(n)
    const cases: Array<[string, (card: Record<string, any>) => unknown, string]> = [
      ['not an object', () => 'card', 'card'],
      ['an array', () => [], 'card'],
      ['null', () => null, 'card'],
      ['unknown field', card => ({ ...card, admin: true }), 'admin'],
      ['__proto__ field', card => JSON.parse(JSON.stringify(card).replace('{', '{"__proto__":{"x":1},')), '__proto__'],
      ['v missing', ({ v: _v, ...card }) => card, 'v'],
      ['v = 2', card => ({ ...card, v: 2 }), 'v'],
      ['v = "1"', card => ({ ...card, v: '1' }), 'v'],
      ['peer_id missing', ({ peer_id: _p, ...card }) => card, 'peer_id'],
      ['peer_id not base58', card => ({ ...card, peer_id: '12D3Koo0OlI' }), 'peer_id'],
      ['peer_id a number', card => ({ ...card, peer_id: 12 }), 'peer_id'],
      ['peer_id too long', card => ({ ...card, peer_id: long(129) }), 'peer_id'],
      ['key without prefix', card => ({ ...card, key: card.key.slice(8) }), 'key'],
      ['key of 31 bytes', card => ({ ...card, key: 'ed25519:' + Buffer.alloc(31).toString('base64') }), 'key'],
      ['did malformed', card => ({ ...card, did: 'did:key:z6Mk' }), 'did'],
      ['did too long', card => ({ ...card, did: 'did:molt:key:z' + long(200) }), 'did'],
      ['name empty', card => ({ ...card, name: '' }), 'name'],
      ['name with a space', card => ({ ...card, name: 'a b' }), 'name'],
      ['name of 129 chars', card => ({ ...card, name: long(129) }), 'name'],
      ['org missing', ({ org: _o, ...card }) => card, 'org'],
      ['org with a dot', card => ({ ...card, org: 'acme.com' }), 'org'],
      ['description a number', card => ({ ...card, description: 5 }), 'description'],
      ['description of 1025 chars', card => ({ ...card, description: long(1025) }), 'description'],
      ['capabilities missing', ({ capabilities: _c, ...card }) => card, 'capabilities'],
      ['capabilities an object', card => ({ ...card, capabilities: {} }), 'capabilities'],
      ['capabilities of strings', card => ({ ...card, capabilities: ['translate'] }), 'capabilities[0]'],
      ['capability without name', card => ({ ...card, capabilities: [{ description: 'x' }] }), 'capabilities[0].name'],
      ['capability name of 129 chars', card => ({ ...card, capabilities: [{ name: long(129) }] }), 'capabilities[0].name'],
      ['capability name with a newline', card => ({ ...card, capabilities: [{ name: 'a\nb' }] }), 'capabilities[0].name'],
      ['capability listed twice', card => ({ ...card, capabilities: [{ name: 'x' }, { name: 'y' }, { name: 'x' }] }), 'capabilities[2].name'],
      ['capability unknown field', card => ({ ...card, capabilities: [{ name: 'x', cost: 1 }] }), 'capabilities[0].cost'],
      ['capability description too long', card => ({ ...card, capabilities: [{ name: 'x', description: long(1025) }] }), 'capabilities[0].description'],
      ['protocol_versions empty', card => ({ ...card, protocol_versions: [] }), 'protocol_versions'],
      ['protocol_versions of numbers', card => ({ ...card, protocol_versions: [0.1] }), 'protocol_versions[0]'],
      ['supported_cls unknown', card => ({ ...card, supported_cls: ['pub', 'top-secret'] }), 'supported_cls[1]'],
      ['supported_cls twice', card => ({ ...card, supported_cls: ['pub', 'pub'] }), 'supported_cls[1]'],
      ['addresses a string', card => ({ ...card, addresses: '/ip4/127.0.0.1/tcp/1' }), 'addresses'],
      ['address not a multiaddr', card => ({ ...card, addresses: ['/ip4/127.0.0.1/tcp/1', 'not-a-multiaddr'] }), 'addresses[1]'],
      ['address of 1025 chars', card => ({ ...card, addresses: ['/dns4/' + long(1020)] }), 'addresses[0]'],
      ['issued a string', card => ({ ...card, issued: String(card.issued) }), 'issued'],
      ['issued a float', card => ({ ...card, issued: card.issued + 0.5 }), 'issued'],
      ['issued negative', card => ({ ...card, issued: -1 }), 'issued'],
      ['expires missing', ({ expires: _e, ...card }) => card, 'expires'],
      ['sig missing', ({ sig: _s, ...card }) => card, 'sig'],
      ['sig without prefix', card => ({ ...card, sig: card.sig.slice(8) }), 'sig'],
      ['sig of 63 bytes', card => ({ ...card, sig: 'ed25519:' + Buffer.alloc(63).toString('base64') }), 'sig']
    ]
    for (const [what, mutate, field] of cases) {
      it(what, () => {
        const card = signCard(fields(a), a.signingKey) as unknown as Record<string, any>
        expect(fieldOf(() => verifyCard(mutate({ ...card })))).toEqual({ name: 'InvalidCardError', field })
      })
    }
  })

  it('over-long lists are refused, both when signing and when verifying', () => {
    const lists: Array<[Partial<UnsignedCard>, string]> = [
      [{ capabilities: Array.from({ length: 257 }, (_, i) => ({ name: `c${i}` })) }, 'capabilities'],
      [{ addresses: Array.from({ length: 33 }, (_, i) => `/ip4/127.0.0.1/tcp/${i + 1}`) }, 'addresses'],
      [{ protocol_versions: Array.from({ length: 17 }, (_, i) => `0.${i}`) }, 'protocol_versions'],
      [{ supported_cls: ['pub', 'int', 'conf', 'pii', 'sec', 'pub'] as any }, 'supported_cls']
    ]
    for (const [overrides, field] of lists) {
      expect(fieldOf(() => signCard(fields(a, overrides), a.signingKey))).toEqual({ name: 'InvalidCardError', field })
      expect(fieldOf(() => verifyCard(forge({ ...fields(a), ...overrides }, a)))).toEqual({ name: 'InvalidCardError', field })
    }
    // the limits themselves are accepted
    const card = signCard(fields(a, {
      capabilities: Array.from({ length: 256 }, (_, i) => ({ name: `c${i}` })),
      addresses: Array.from({ length: 32 }, (_, i) => `/ip4/127.0.0.1/tcp/${i + 1}`),
      description: 'd'.repeat(1024)
    }), a.signingKey)
    expect(verifyCard(JSON.parse(JSON.stringify(card))).capabilities).toHaveLength(256)
  })
})

describe('card frames', () => {
  const card = (): AgentCard => signCard(fields(a), a.signingKey)

  it('reads one frame written whole or byte by byte', async () => {
    const json = JSON.stringify(card())
    const frame = encodeFrame(json)
    for (const chunks of [[frame], Array.from(frame, byte => Uint8Array.of(byte))]) {
      const [outbound, inbound] = await streamPair()
      const read = readFrame(inbound, 65536, AbortSignal.timeout(5000))
      for (const chunk of chunks) outbound.send(chunk)
      await outbound.close()
      expect(Buffer.from(await read).toString()).toBe(json)
    }
  })

  it('refuses a length over the limit from the prefix alone', async () => {
    const [outbound, inbound] = await streamPair()
    const read = readFrame(inbound, 65536, AbortSignal.timeout(5000))
    outbound.send(Uint8Array.of(0x81, 0x80, 0x04)) // 65537
    await expect(read).rejects.toMatchObject({ name: 'CardTooLargeError' })
    const [outbound2, inbound2] = await streamPair()
    const read2 = readFrame(inbound2, 65536, AbortSignal.timeout(5000))
    outbound2.send(Uint8Array.of(0x80, 0x80, 0x80, 0x80)) // a padded varint: length-of-length over the limit
    await expect(read2).rejects.toMatchObject({ name: 'CardTooLargeError' })
  })

  it('reports an empty or truncated stream', async () => {
    const [outbound, inbound] = await streamPair()
    const read = readFrame(inbound, 65536, AbortSignal.timeout(5000))
    await outbound.close()
    await expect(read).rejects.toMatchObject({ name: 'CardTruncatedError', received: 0 })

    const [outbound2, inbound2] = await streamPair()
    const read2 = readFrame(inbound2, 65536, AbortSignal.timeout(5000))
    outbound2.send(encodeFrame(JSON.stringify(card())).subarray(0, 100))
    await outbound2.close()
    await expect(read2).rejects.toMatchObject({ name: 'CardTruncatedError', received: 100 })
  })

  it('gives up when the signal aborts', async () => {
    const [, inbound] = await streamPair()
    await expect(readFrame(inbound, 65536, AbortSignal.timeout(50))).rejects.toMatchObject({ name: 'TimeoutError' })
  })
})
