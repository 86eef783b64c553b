import { randomBytes } from 'node:crypto'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest'
import { FrameDecoder, FRAME_ACK } from '../../src/services/speak/frames.js'
import { SPEAK_PROTOCOL, type MoltMessage, type MoltNode } from '../../src/index.js'
import { PROTOCOL_REPLIES as SPEAK_PROTOCOL_REPLIES } from '../../src/services/speak/constants.js'
import { signingBytes } from '../../src/moltspeak/index.js'
import { TestNetwork } from '../support/nodes.js'
import { closeRawStreams, encodeFrame, FRAME_MESSAGE, FRAME_REJECT, rawSpeak, RawSpeakStream } from '../support/raw-speak.js'
import { corpus, UNSIGNABLE_BY_MOLT, unsignedCases, type Case } from './corpus.js'
import { describeWithPython, pyPublicKey, pySign, pyVerify } from './python.js'
import { moltVerdict, pyVerdict } from './verdicts.js'

/*
 * molt against an independent implementation (moltspeak_ref.py), over the
 * wire: Python-signed messages go through a real /molt/speak/1.0.0 stream into
 * a running node (sent from a node holding the Python signer's key, so
 * from.key matches the Noise peer); molt-signed messages are captured as a
 * running node sends them and verified by Python.
 */

const net = new TestNetwork()
const SEED_PY = randomBytes(32)
let receiver: MoltNode
let pySender: MoltNode
let cases: Case[]

describeWithPython('cross-implementation signatures, over the wire', () => {
  beforeAll(async () => {
    const pyKey = await pyPublicKey(SEED_PY)
    receiver = await net.node({ agent: { name: 'molt', org: 'molt' } })
    pySender = await net.node({ privateKey: await generateKeyPairFromSeed('Ed25519', SEED_PY), agent: { name: 'py', org: 'ref' } })
    await net.introduce()
    cases = corpus({ from: { agent: 'py', org: 'ref', key: pyKey }, to: { agent: 'molt', org: 'molt' } })
  })
  afterEach(async () => { await closeRawStreams() })
  afterAll(async () => { await net.cleanup() })

  it('Python-signed messages injected into a running node: ACK or REJECT exactly as documented, as Python and in-process molt say', async () => {
    const all = [...cases, ...unsignedCases(cases)]
    const texts = [...await pySign(SEED_PY, cases.map(c => c.text)), ...all.slice(cases.length).map(c => c.text)]
    const python = await pyVerify(texts)
    // ping/pong are housekeeping: acknowledged and dispatched, never kept in the inbox
    const housekeeping = new Set<string>()
    receiver.addEventListener('housekeeping', (evt) => { housekeeping.add(evt.detail.message.id) })
    const raw = await rawSpeak(pySender, receiver)
    texts.forEach((text, i) => { raw.send(encodeFrame(FRAME_MESSAGE, i + 1, Buffer.from(text, 'utf8'))) })
    const frames = await raw.until(f => f.some(x => x.type === FRAME_ACK && x.seq === texts.length))
    const rejected = new Map(frames.filter(f => f.type === FRAME_REJECT).map(f => [f.seq, RawSpeakStream.rejection(f).p]))
    const rows = all.map((c, i) => {
      const wire = rejected.get(i + 1)
      return { name: c.name, expect: c.expect, wire: wire?.code ?? 'accept', inProcess: moltVerdict(texts[i]).code, python: pyVerdict(python[i]).code, reason: wire?.message }
    })
    expect(rows.filter(r => r.wire !== r.expect || r.inProcess !== r.expect || r.python !== r.expect)).toEqual([])
    for (const r of rows.filter(r => r.expect !== 'accept')) expect(r.reason, r.name).toMatch(/Duplicate key|no exact double|overflows/)

    // what was acknowledged is in the inbox (ping/pong: passed on as housekeeping), with the values JSON.parse gives
    const inbox = new Map((await receiver.inbox({ limit: 100_000 })).map(e => [e.message.id, e.message]))
    for (const [i, c] of all.entries()) {
      const message = JSON.parse(texts[i]) as MoltMessage
      const kept = message.op === 'ping' || message.op === 'pong' ? housekeeping.has(message.id) : inbox.has(message.id)
      expect(kept, c.name).toBe(c.expect === 'accept')
    }
  })

  // issue #15 finding 7 on the live path: every re-spelled variant below was ACKed under its one signature before
  it('one Python signature, re-spelled: a running node accepts only the content that was signed', async () => {
    const pyKey = await pyPublicKey(SEED_PY)
    const ts = Date.now()
    const text = (id: string, amount: string): string =>
      `{"v":"0.1","id":"${id}","ts":${ts},"op":"query","from":{"agent":"py","org":"ref","key":"${pyKey}"},"to":{"agent":"molt","org":"molt"},"cls":"int","p":{"domain":"pay","amount":${amount}}}`
    const variants: Array<[string, string, (signed: string) => string, string]> = [
      ['100 as signed', '100', t => t, 'accept'],
      ['100 re-spelled 100.0', '100', t => t.replace('"amount":100', '"amount":100.0'), 'E_SIGNATURE'],
      ['100 re-spelled 1e2', '100', t => t.replace('"amount":100', '"amount":1e2'), 'E_SIGNATURE'],
      ['amount re-spelled \\u0061mount', '100', t => t.replace('"amount"', '"\\u0061mount"'), 'accept'],
      ['a second amount before it', '100', t => t.replace('"amount":100', '"amount":999,"amount":100'), 'E_PARSE'],
      ['2^53 as signed', '9007199254740992', t => t, 'accept'],
      ['2^53 re-spelled 2^53+1', '9007199254740992', t => t.replace('9007199254740992', '9007199254740993'), 'E_SIGNATURE']
    ]
    // each variant under its own id (the receiver de-duplicates ids)
    const signed = await pySign(SEED_PY, variants.map(([, amount]) => text(crypto.randomUUID(), amount)))
    const wires = variants.map(([, , respell], i) => respell(signed[i]))
    expect(wires.slice(1, 5).every((w, i) => w !== signed[i + 1])).toBe(true)
    const raw = await rawSpeak(pySender, receiver)
    wires.forEach((wire, i) => { raw.send(encodeFrame(FRAME_MESSAGE, i + 1, Buffer.from(wire, 'utf8'))) })
    const frames = await raw.until(f => f.some(x => x.type === FRAME_ACK && x.seq === wires.length))
    const rejected = new Map(frames.filter(f => f.type === FRAME_REJECT).map(f => [f.seq, RawSpeakStream.rejection(f).p.code as string]))
    expect(variants.map(([name], i) => [name, rejected.get(i + 1) ?? 'accept'])).toEqual(variants.map(([name, , , verdict]) => [name, verdict]))
  })

  it('molt-signed messages as a running node sends them verify in Python over the same canonical bytes', async () => {
    // a recorder in place of the receiver's speak handler keeps the exact bytes that crossed the wire
    const recorder = await net.node({ agent: { name: 'recorder', org: 'molt' } })
    const signer = await net.node({ agent: { name: 'Molt Signer', org: 'molt.v1' }, signMessages: true })
    await net.introduce()
    const captured: string[] = []
    // the recorder speaks 1.0.0 only (MESSAGE frames, as an older peer sees them)
    await recorder.libp2p.unhandle(SPEAK_PROTOCOL_REPLIES)
    await recorder.libp2p.unhandle(SPEAK_PROTOCOL)
    await recorder.libp2p.handle(SPEAK_PROTOCOL, (stream: any) => {
      const frames = new FrameDecoder(2 * 1024 * 1024)
      stream.addEventListener('message', (evt: any) => {
        frames.push(evt.data)
        for (let f = frames.next(); f != null; f = frames.next()) {
          if (f.type !== FRAME_MESSAGE) continue
          captured.push(Buffer.from(f.body).toString('utf8'))
          stream.send(encodeFrame(FRAME_ACK, f.seq))
        }
      })
    })

    const sent: MoltMessage[] = []
    const skipped: string[] = []
    for (const c of cases) {
      const value = JSON.parse(c.text) as MoltMessage
      try {
        const result = await signer.send(recorder.peerId, {
          op: value.op, p: value.p, to: value.to, cls: value.cls, re: value.re, exp: value.exp, cap: value.cap, ext: value.ext, pii_meta: value.pii_meta
        }, { delivery: 'best-effort' })
        sent.push(result.message)
      } catch (err: any) {
        if (err.name !== 'CanonicalizationError') throw err
        skipped.push(c.name)
      }
    }
    expect(skipped).toEqual(UNSIGNABLE_BY_MOLT)
    expect(captured).toHaveLength(sent.length)
    const python = await pyVerify(captured)
    expect(python.map((v, i) => [sent[i].op, v.signed, pyVerdict(v).code])).toEqual(sent.map(m => [m.op, true, 'accept']))
    for (const [i, m] of sent.entries()) {
      expect((JSON.parse(captured[i]) as MoltMessage).id).toBe(m.id)
      expect(python[i].canonical).toBe(Buffer.from(signingBytes(m)).toString('utf8'))
    }
  })
})
