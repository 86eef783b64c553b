import { describe, it, expect, afterEach } from 'vitest'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openDatabase, type Database } from '../../src/storage/index.js'
import { MailboxStore } from '../../src/services/mailbox/store.js'
import { resolveMailboxLimits } from '../../src/services/mailbox/index.js'
import { decodeRecord, encodeRecord, servedJson } from '../../src/services/mailbox/record.js'
import { EncodedFrame, FrameDecoder, encodeDepositRequest, encodeFrame } from '../../src/services/mailbox/frames.js'
import { MAX_FRAME_BYTES } from '../../src/services/mailbox/constants.js'

const FROM = '12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf'
const TO = '12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo'

describe('mailbox store records (served part spliced into fetch answers)', () => {
  const dirs: string[] = []
  const dbs: Database[] = []
  afterEach(async () => {
    await Promise.all(dbs.splice(0).map(async db => db.close()))
    await Promise.all(dirs.splice(0).map(async d => rm(d, { recursive: true, force: true })))
  })
  const open = async (): Promise<Database> => {
    const dir = await mkdtemp(join(tmpdir(), 'molt-mailbox-record-'))
    dirs.push(dir)
    const db = await openDatabase(dir)
    dbs.push(db)
    return db
  }

  it('keeps the source address and first-contact flag out of what a fetch serves, in both record forms', () => {
    const served = { from: FROM, id: 'a"b\n', exp: 2, at: 1, box: 'AAAA' }
    const value = encodeRecord({ src: '10.0.0.1\n"', fc: true }, served)
    expect(decodeRecord(value)).toEqual({ meta: { src: '10.0.0.1\n"', fc: true }, served })
    expect(JSON.parse(servedJson('0001', value))).toEqual({ key: '0001', ...served })
    // written before the split: one object holding src and fc
    const old = JSON.stringify({ ...served, src: '10.0.0.1', fc: true })
    expect(decodeRecord(old)).toEqual({ meta: { src: '10.0.0.1', fc: true }, served })
    expect(JSON.parse(servedJson('0001', old))).toEqual({ key: '0001', ...served })
  })

  it('a store reopened over records of both forms counts and serves them all, and never serves src or fc', async () => {
    const db = await open()
    const limits = resolveMailboxLimits({})
    const store = new MailboxStore(db, limits)
    await store.open()
    store.registry.register(TO, 'source-a')
    const exp = Date.now() + 60_000
    await store.deposit(FROM, TO, [{ id: 'new-1', exp, box: 'AAAA' }, { id: 'new-2', exp, box: 'BBBB' }], { source: 'source-a' })
    // a box the previous format wrote, after the two above
    const table = db.sublevel('mailbox', { keyEncoding: 'utf8', valueEncoding: 'utf8' })
    await table.put(`${TO}!${'9'.repeat(16)}`, JSON.stringify({ from: FROM, id: 'old-1', exp, at: 5, box: 'CCCC', src: 'source-b', fc: true }))
    await store.close()

    const reopened = new MailboxStore(db, limits)
    await reopened.open()
    expect(reopened.stats()).toMatchObject({ messages: 3, bytes: 12 })
    const page = await reopened.fetchEncoded(TO, { limit: 512 })
    expect(page.count).toBe(3)
    expect(page.items).not.toMatch(/src|source-|"fc"/)
    const { items } = await reopened.fetch(TO, { limit: 512 })
    expect(items.map(i => [i.id, i.box, i.from])).toEqual([['new-1', 'AAAA', FROM], ['new-2', 'BBBB', FROM], ['old-1', 'CCCC', FROM]])
    expect(items.every(i => Object.keys(i).sort().join() === 'at,box,exp,from,id,key')).toBe(true)
    // paging after a key, and an acknowledged box is gone before its delete is written
    expect((await reopened.fetch(TO, { limit: 1 })).more).toBe(true)
    expect((await reopened.fetch(TO, { limit: 512, after: items[0].key })).items.map(i => i.id)).toEqual(['new-2', 'old-1'])
    await reopened.ack(TO, [items[1].key])
    expect((await reopened.fetch(TO, { limit: 512 })).items.map(i => i.id)).toEqual(['new-1', 'old-1'])
    await reopened.close()
  })

  it('writes a pre-encoded frame as it is, readable by the decoder', () => {
    const decoder = new FrameDecoder(MAX_FRAME_BYTES)
    decoder.push(encodeFrame(new EncodedFrame('{"t":"items","rid":7,"items":[{"key":"1","box":"é"}],"more":false}')))
    expect(decoder.next()).toEqual({ t: 'items', rid: 7, items: [{ key: '1', box: 'é' }], more: false })
    expect(decoder.frameBytes).toBe(Buffer.byteLength('{"t":"items","rid":7,"items":[{"key":"1","box":"é"}],"more":false}'))
  })
})

describe('mailbox store records: boxes that are not canonical base64', () => {
  it('are escaped, so the record and the fetch answer stay JSON with the box as deposited', () => {
    for (const box of ['AAAA', 'AA"}]', 'A\\u0000', 'A\nB', 'é€😀', 'AAA=', 'AAB=', '']) {
      const value = encodeRecord({ src: 's' }, { from: 'f', id: 'i', exp: 1, at: 2, box })
      expect(decodeRecord(value).served.box).toBe(box)
      expect(JSON.parse(`[${servedJson('1', value)}]`)[0].box).toBe(box)
    }
  })
})

describe('deposit requests written by concatenation', () => {
  it('parse to the same request object the client used to stringify, ids escaped', () => {
    const items = [{ id: 'plain', exp: 1, box: 'AAAA' }, { id: 'q"u\\o', exp: 2.5, box: 'AB+/' }]
    const request = encodeDepositRequest(FROM, TO, items, 'c2ln')
    expect(request.t).toBe('deposit')
    expect(JSON.parse(`{"rid":9,${request.members}`)).toEqual({ rid: 9, t: 'deposit', from: FROM, to: TO, items, sig: 'c2ln' })
  })
})
