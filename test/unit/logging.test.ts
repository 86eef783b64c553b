import { describe, it, expect, vi } from 'vitest'
import { PassThrough, Writable } from 'node:stream'
import { peerIdFromString } from '@libp2p/peer-id'
import { StructuredLogger, formatLogLine, parseLogLevel, resolveLogOptions, InvalidLogOptionError, levelEnabled, LOG_BATCH_INTERVAL, MAX_FIELD_DEPTH, LOG_LEVEL_ENV, LOG_FORMAT_ENV, DEFAULT_LOG_LEVEL, DEFAULT_LOG_FORMAT } from '../../src/logging/index.js'
import { Output } from '../../src/cli/output.js'
import { parseConfig } from '../../src/config/index.js'
import { applyEnv } from '../../src/config/env.js'

const T = Date.UTC(2025, 0, 2, 3, 4, 5, 678)
const PEER = '12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA'

function capture (): { stream: PassThrough, lines: () => string[] } {
  const stream = new PassThrough()
  let text = ''
  stream.setEncoding('utf8').on('data', (chunk: string) => { text += chunk })
  return { stream, lines: () => text.split('\n').filter(Boolean) }
}

describe('log lines', () => {
  it('json: ts, level, msg first, then the fields; payloads and keys never written', () => {
    const line = formatLogLine('json', 'info', 'message', {
      id: 'm1', peer: peerIdFromString(PEER), n: 10n, msg: 'shadow', message: { op: 'query', p: { secret: 1 }, sig: 'ed25519:xx', from: { agent: 'a', key: 'ed25519:yy' } }
    }, T)
    expect(JSON.parse(line)).toEqual({ ts: '2025-01-02T03:04:05.678Z', level: 'info', msg: 'message', id: 'm1', peer: PEER, n: '10', message: { op: 'query', from: { agent: 'a' } } })
    expect(line).not.toContain('ed25519')
    expect(Object.keys(JSON.parse(line)).slice(0, 3)).toEqual(['ts', 'level', 'msg'])
  })

  it('pretty: one line, quoted where needed', () => {
    expect(formatLogLine('pretty', 'warn', 'refused', { reservations: { 'per-ip-limit': 2 }, why: 'a b', peer: PEER }, T))
      .toBe(`2025-01-02T03:04:05.678Z WARN  refused reservations={"per-ip-limit":2} why="a b" peer=${PEER}`)
  })

  it('levels include the more severe ones', () => {
    expect(levelEnabled('info', 'warn')).toBe(true)
    expect(levelEnabled('info', 'debug')).toBe(false)
    const { stream, lines } = capture()
    const logger = new StructuredLogger({ level: 'warn', format: 'json', stream, now: () => T })
    logger.debug('a')
    logger.info('b')
    logger.warn('c')
    logger.error('d')
    expect(lines().map(l => JSON.parse(l).msg)).toEqual(['c', 'd'])
  })

  it('options: flags over config/env over defaults; bad values name their source', () => {
    expect(resolveLogOptions({})).toEqual({ level: 'info', format: 'pretty' })
    expect(resolveLogOptions({ level: 'debug' }, { level: 'warn', format: 'json' })).toEqual({ level: 'debug', format: 'json' })
    expect(() => parseLogLevel('loud', '--log-level')).toThrow(InvalidLogOptionError)
    expect(() => resolveLogOptions({ format: 'xml' })).toThrow('--log-format must be one of json, pretty, got "xml"')
    expect(applyEnv(parseConfig({ log: { level: 'warn' } }), { MOLT_LOG_FORMAT: 'json' }).log).toEqual({ level: 'warn', format: 'json' })
    expect(() => applyEnv(parseConfig({}), { MOLT_LOG_LEVEL: 'loud' })).toThrow(/MOLT_LOG_LEVEL.*log\.level/)
    expect(() => parseConfig({ log: { format: 'xml' } })).toThrow('log.format')
  })
})

describe('CLI output with logging', () => {
  it('events: pretty text, the --json document, or a JSON log line without payload', () => {
    const entry = {
      cursor: 3, receivedAt: T, peer: PEER, route: 'direct' as const,
      message: { v: '0.1', id: 'm1', ts: T, op: 'query', from: { agent: 'a', org: 'o', key: 'ed25519:k' }, to: { agent: 'b', org: 'o' }, p: { secret: 'payload' }, sig: 'ed25519:s' } as any
    }
    const pretty = capture()
    new Output(false, pretty.stream, new PassThrough()).message(entry)
    expect(pretty.lines()).toEqual([`2025-01-02T03:04:05.678Z query from a@o (…${PEER.slice(-8)}) id=m1`])

    const legacy = capture()
    new Output(true, legacy.stream, new PassThrough()).message(entry)
    expect(JSON.parse(legacy.lines()[0])).toEqual({ event: 'message', ...entry })

    const logged = capture()
    const out = new Output(true, logged.stream, new PassThrough())
    out.useLogging({ level: 'info', format: 'json' })
    out.message(entry)
    out.event('debug', 'hidden', { fields: { x: 1 } })
    out.error('E_INTERNAL', 'boom')
    const [message, error, ...rest] = logged.lines().map(l => JSON.parse(l))
    expect(message).toMatchObject({ level: 'info', msg: 'message', cursor: 3, id: 'm1', op: 'query', from: 'a@o', peer: PEER, route: 'direct', signed: true })
    expect(JSON.stringify(message)).not.toMatch(/payload|ed25519/)
    expect(error).toMatchObject({ level: 'error', msg: 'boom', code: 'E_INTERNAL' })
    expect(rest).toEqual([])
  })

  it('batch: info lines of several turns leave in one write within the interval; warn/error and flush() write what was gathered first, in order', async () => {
    const writes: string[] = []
    const stream = new PassThrough()
    stream.on('data', (chunk: Buffer) => { writes.push(chunk.toString('utf8')) })
    // one line per request/response exchange: each in its own turn, all in one write
    const logger = new StructuredLogger({ format: 'json', stream, batch: { interval: 1000 }, now: () => T })
    const written = new Promise(resolve => stream.once('data', resolve))
    logger.info('one', { n: 1 })
    await new Promise(resolve => setImmediate(resolve))
    logger.info('two', { n: 2 })
    logger.debug('not at this level')
    await new Promise(resolve => setImmediate(resolve))
    expect(writes.length).toBe(0)
    await written
    expect(writes.length).toBe(1)
    expect(writes[0].split('\n').filter(Boolean).map(l => JSON.parse(l).msg)).toEqual(['one', 'two'])
    logger.info('three')
    logger.error('four')
    logger.info('five')
    logger.flush()
    await new Promise(resolve => setImmediate(resolve))
    expect(writes.join('').split('\n').filter(Boolean).map(l => JSON.parse(l).msg)).toEqual(['one', 'two', 'three', 'four', 'five'])
  })

  it('batch: true holds info lines for constants.ts LOG_BATCH_INTERVAL ms, no longer', () => {
    vi.useFakeTimers()
    try {
      const writes: string[] = []
      const stream = new Writable({ write (chunk: Buffer, _encoding, callback) { writes.push(chunk.toString()); callback() } })
      const logger = new StructuredLogger({ format: 'json', stream, batch: true, now: () => T })
      logger.info('held')
      vi.advanceTimersByTime(LOG_BATCH_INTERVAL - 1)
      expect(writes).toEqual([])
      vi.advanceTimersByTime(1)
      expect(writes.map(w => JSON.parse(w).msg)).toEqual(['held'])
    } finally {
      vi.useRealTimers()
    }
  })

  it('the defaults and limits come from constants.ts: level, format, environment names, field depth', () => {
    const logger = new StructuredLogger({ stream: new PassThrough() })
    expect([logger.level, logger.format]).toEqual([DEFAULT_LOG_LEVEL, DEFAULT_LOG_FORMAT])
    expect(resolveLogOptions({})).toEqual({ level: DEFAULT_LOG_LEVEL, format: DEFAULT_LOG_FORMAT })
    expect(parseConfig({}).log).toEqual({ level: DEFAULT_LOG_LEVEL, format: DEFAULT_LOG_FORMAT })
    // the names the relay reads are the ones the config layer applies
    expect(applyEnv(parseConfig({}), { [LOG_LEVEL_ENV]: 'debug', [LOG_FORMAT_ENV]: 'json' }).log).toEqual({ level: 'debug', format: 'json' })
    // a value nested deeper than MAX_FIELD_DEPTH is cut short
    let nested: any = 'leaf'
    for (let i = 0; i < MAX_FIELD_DEPTH + 1; i++) nested = { n: nested }
    const line = JSON.parse(formatLogLine('json', 'info', 'deep', { nested }, T))
    let value = line
    for (let i = 0; i < MAX_FIELD_DEPTH; i++) value = value[i === 0 ? 'nested' : 'n']
    expect(value).toBe('[…]')
  })

  it('a message line below the log level builds nothing', () => {
    const out = new Output(false, new PassThrough(), new PassThrough())
    out.useLogging({ level: 'warn', format: 'json' })
    // an entry whose fields would throw if they were read
    const entry = { cursor: 1, receivedAt: T, peer: PEER, route: 'direct' as const, get message (): any { throw new Error('read') } }
    expect(() => { out.message(entry as any) }).not.toThrow()
  })
})
