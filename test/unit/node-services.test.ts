import { describe, it, expect } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { identityFromKey } from '../../src/identity/index.js'
import { createMessage, errorPayload, verifyMessage, MOLT_EXTENSION, type MoltMessage } from '../../src/moltspeak/index.js'
import { MoltEvents } from '../../src/node/events.js'
import { RequestTracker } from '../../src/node/requests.js'
import { MessageFactory, withDelivery, isHousekeeping } from '../../src/node/messages.js'
import { NotStartedError } from '../../src/errors.js'

/** The small pieces of the node facade, without a network: events, request matching, message building */
const from = { agent: 'a', org: 'test' }

function reply (op: MoltMessage['op'], re: string): MoltMessage {
  return createMessage({ op, p: {}, from, to: from, re })
}

describe('MoltEvents', () => {
  it('counts message listeners, tells passive ones apart, and counts readers (with a grace after they leave)', () => {
    const events = new MoltEvents()
    expect(events.hasMessageListeners()).toBe(false)
    expect(events.hasReader()).toBe(false)
    const passive = (): void => {}
    events.addEventListener('message', passive, { passive: true })
    expect(events.hasMessageListeners()).toBe(true)
    expect(events.hasReader()).toBe(false)
    const active = (): void => {}
    events.addEventListener('message', active)
    expect(events.hasReader()).toBe(true)
    events.removeEventListener('message', active)
    events.removeEventListener('message', passive)
    expect(events.hasMessageListeners()).toBe(false)
    events.readerStarted()
    expect(events.hasReader()).toBe(true)
    events.readerStopped()
    // a stream client reconnecting within READER_GRACE still counts
    expect(events.hasReader()).toBe(true)
  })

  it('a throwing or rejecting listener is contained; removal still finds the wrapped listener', async () => {
    const events = new MoltEvents()
    const seen: string[] = []
    const thrower = (): void => { throw new Error('boom') }
    const rejecter = async (): Promise<void> => { throw new Error('async boom') }
    const counter = (evt: Event): void => { seen.push(evt.type) }
    events.addEventListener('message', thrower)
    events.addEventListener('message', rejecter)
    events.addEventListener('message', counter)
    expect(() => events.dispatchEvent(new CustomEvent('message'))).not.toThrow()
    events.removeEventListener('message', counter)
    events.dispatchEvent(new CustomEvent('message'))
    expect(seen).toEqual(['message'])
    await new Promise(resolve => setImmediate(resolve))
  })

  it('stop() announces `stop` once', () => {
    const events = new MoltEvents()
    let stops = 0
    events.addEventListener('stop', () => { stops++ })
    events.stop()
    events.stop()
    expect(stops).toBe(1)
    expect(events.isStopped).toBe(true)
  })
})

describe('RequestTracker', () => {
  it('settles a request only with a respond/error/pong from the peer it was sent to', async () => {
    const tracker = new RequestTracker()
    const pending = tracker.expect('req-1', 'peer-a')
    tracker.settle(reply('respond', 'req-1'), 'peer-b')
    tracker.settle(reply('query', 'req-1'), 'peer-a')
    const answer = reply('error', 'req-1')
    tracker.settle(answer, 'peer-a')
    expect(await pending.reply).toBe(answer)
    pending.release()
  })

  it('beforeStop fails every pending request with NotStartedError; a released one is not touched', async () => {
    const tracker = new RequestTracker()
    const waiting = tracker.expect('req-1', 'peer-a')
    const released = tracker.expect('req-2', 'peer-a')
    released.release()
    tracker.beforeStop()
    await expect(waiting.reply).rejects.toBeInstanceOf(NotStartedError)
    tracker.settle(reply('respond', 'req-2'), 'peer-a')
  })
})

describe('MessageFactory', () => {
  it('fills from (the current profile) and to; signs when asked or by default', async () => {
    const identity = identityFromKey(await generateKeyPair('Ed25519'))
    const factory = new MessageFactory({ identity, profile: { name: 'alice', org: 'test', capabilities: [] } })
    const plain = factory.build(identity.peerId, { op: 'query', p: { domain: 'd', intent: 'i' } })
    expect(plain.from).toEqual({ agent: 'alice', org: 'test', key: identity.moltKey })
    expect(plain.to).toEqual({ agent: identity.peerId.toString(), org: 'peer' })
    expect(plain.sig).toBeUndefined()
    factory.setProfile({ name: 'alice2', org: 'test', capabilities: [] })
    const signed = factory.build(identity.peerId, { op: 'query', p: { domain: 'd', intent: 'i' } }, true)
    expect(signed.from.agent).toBe('alice2')
    expect(verifyMessage(signed)).toBe(true)
    const byDefault = new MessageFactory({ identity, profile: factory.profile, signMessages: true })
    expect(verifyMessage(byDefault.build(identity.peerId, { op: 'query', p: { domain: 'd', intent: 'i' } }))).toBe(true)
  })

  it('a peer whose hello lists no molt extension gets schema error codes, until a hello says otherwise', async () => {
    const factory = new MessageFactory({ identity: identityFromKey(await generateKeyPair('Ed25519')), profile: { name: 'a', org: 'test', capabilities: [] } })
    const p = errorPayload('E_CAPABILITY_UNKNOWN', 'nothing answers') as unknown as Record<string, unknown>
    expect(factory.errorFor('peer', p)).toBe(p)
    factory.noteHello('peer', createMessage({ op: 'hello', p: { extensions: [] }, from, to: from }))
    expect(factory.speaksMolt('peer')).toBe(false)
    expect(factory.errorFor('peer', p)).toMatchObject({ code: 'E_INVALID_PARAM', context: { molt_code: 'E_CAPABILITY_UNKNOWN' } })
    factory.noteHello('peer', createMessage({ op: 'hello', p: { extensions: [MOLT_EXTENSION] }, from, to: from }))
    expect(factory.speaksMolt('peer')).toBe(true)
  })
})

describe('delivery ext fields', () => {
  it('best-effort without receipt is left alone; kept modes get an expiry; exactly-once and receipts are marked', () => {
    const init = { op: 'query' as const, p: {}, ts: 1000 }
    expect(withDelivery(init, 'best-effort', false)).toBe(init)
    const once = withDelivery(init, 'exactly-once', true)
    expect(once.exp).toBeGreaterThan(1000)
    expect(once.ext).toEqual({ molt: { delivery: 'exactly-once', receipt: true } })
    expect(withDelivery(init, 'at-least-once', false).ext).toBeUndefined()
  })

  it('ping/pong are housekeeping unless exactly-once or a receipt was asked for', () => {
    expect(isHousekeeping(createMessage({ op: 'ping', p: {}, from, to: from }))).toBe(true)
    expect(isHousekeeping(createMessage({ op: 'ping', p: {}, from, to: from, ext: { molt: { receipt: true } } }))).toBe(false)
    expect(isHousekeeping(createMessage({ op: 'query', p: {}, from, to: from }))).toBe(false)
  })
})
