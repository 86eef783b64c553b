import { levelEnabled, type LogFormat, type LogLevel } from './levels.js'
import { DEFAULT_LOG_FORMAT, DEFAULT_LOG_LEVEL, LOG_BATCH_INTERVAL, MAX_FIELD_DEPTH } from './constants.js'

/** What an event line carries besides ts/level/msg */
export type LogFields = Record<string, unknown>

/**
 * Field names never written, at any depth: MoltSpeak payloads (`p`) and
 * signatures, and anything that could be a key or a credential. Log lines go
 * to journals and log shippers that are read by more people than the node's
 * owner; payloads are the agents' business and keys are never anyone's.
 */
export const REDACTED_FIELDS: ReadonlySet<string> = new Set(['p', 'payload', 'sig', 'key', 'privateKey', 'secret', 'token', 'password', 'authorization'])

/** The keys every JSON line starts with; a field of the same name is dropped rather than let it shadow them */
const RESERVED = new Set(['ts', 'level', 'msg'])

export interface LoggerInit {
  /** Lines less severe than this are dropped. @default 'info' */
  level?: LogLevel
  /** @default 'pretty' */
  format?: LogFormat
  /** Where lines go. @default process.stdout */
  stream?: NodeJS.WritableStream
  /** Clock for `ts` (tests). @default Date.now */
  now?: () => number
  /**
   * Gather info/debug lines and write them together, formatted then, at most
   * `interval` ms after the first (true: constants.ts LOG_BATCH_INTERVAL): a long-running
   * node's per-message lines then cost its hot path one array push, not a
   * redaction, a JSON.stringify and a write (a syscall) each. warn and error
   * lines, flush() and the process's exit write everything gathered first, in order.
   * @default false (every line written at once)
   */
  batch?: boolean | { interval: number }
}

type PendingLine = [level: LogLevel, msg: string, fields: LogFields, time: number]

/** Loggers holding gathered lines: written out if the process exits before their turn ends */
const unflushed = new Set<StructuredLogger>()
let exitHooked = false

/**
 * Leveled event lines in one of two formats. Independent of libp2p's
 * `DEBUG=` loggers, which keep writing their own lines to stderr.
 */
export class StructuredLogger {
  readonly level: LogLevel
  readonly format: LogFormat
  private readonly stream: NodeJS.WritableStream
  private readonly now: () => number
  /** ms a gathered line waits at most; undefined: lines are written at once */
  private readonly batchInterval?: number
  private pending: PendingLine[] = []
  private flushTimer?: ReturnType<typeof setTimeout>

  constructor (init: LoggerInit = {}) {
    this.level = init.level ?? DEFAULT_LOG_LEVEL
    this.format = init.format ?? DEFAULT_LOG_FORMAT
    this.stream = init.stream ?? process.stdout
    this.now = init.now ?? Date.now
    this.batchInterval = init.batch === true ? LOG_BATCH_INTERVAL : init.batch === false || init.batch === undefined ? undefined : init.batch.interval
  }

  enabled (level: LogLevel): boolean {
    return levelEnabled(this.level, level)
  }

  log (level: LogLevel, msg: string, fields: LogFields = {}): void {
    if (!this.enabled(level)) return
    if (this.batchInterval !== undefined && (level === 'info' || level === 'debug')) {
      if (this.pending.length === 0) this.scheduleFlush()
      this.pending.push([level, msg, fields, this.now()])
      return
    }
    this.flush()
    this.stream.write(formatLogLine(this.format, level, msg, fields, this.now()) + '\n')
  }

  /** Write every gathered line now */
  flush (): void {
    clearTimeout(this.flushTimer)
    this.flushTimer = undefined
    if (this.pending.length === 0) return
    const lines = this.pending
    this.pending = []
    unflushed.delete(this)
    let text = ''
    for (const [level, msg, fields, time] of lines) text += formatLogLine(this.format, level, msg, fields, time) + '\n'
    this.stream.write(text)
  }

  private scheduleFlush (): void {
    unflushed.add(this)
    if (!exitHooked) {
      exitHooked = true
      process.once('exit', () => { for (const logger of unflushed) logger.flush() })
    }
    this.flushTimer = setTimeout(() => { this.flush() }, this.batchInterval)
    // the exit hook writes what is left: a pending line never keeps the process alive
    this.flushTimer.unref?.()
  }

  error (msg: string, fields?: LogFields): void { this.log('error', msg, fields) }
  warn (msg: string, fields?: LogFields): void { this.log('warn', msg, fields) }
  info (msg: string, fields?: LogFields): void { this.log('info', msg, fields) }
  debug (msg: string, fields?: LogFields): void { this.log('debug', msg, fields) }
}

/** One line, no trailing newline: `{"ts":…,"level":…,"msg":…,…}` or `<ts> <LEVEL> <msg> k=v …` */
export function formatLogLine (format: LogFormat, level: LogLevel, msg: string, fields: LogFields, time: number): string {
  const ts = new Date(time).toISOString()
  const safe = redact(fields, 0) as LogFields
  if (format === 'json') {
    const record: LogFields = { ts, level, msg }
    for (const [name, value] of Object.entries(safe)) {
      if (!RESERVED.has(name) && value !== undefined) record[name] = value
    }
    return JSON.stringify(record)
  }
  const pairs = Object.entries(safe)
    .filter(([, value]) => value !== undefined)
    .map(([name, value]) => `${name}=${prettyValue(value)}`)
  return [ts, level.toUpperCase().padEnd(5), oneLine(msg), ...pairs].join(' ')
}

/** A copy of `value` without REDACTED_FIELDS, JSON-safe (bigint as a string, errors as name and message) */
function redact (value: unknown, depth: number): unknown {
  if (typeof value === 'bigint') return value.toString()
  if (value instanceof Error) return { name: value.name, message: value.message }
  if (value instanceof Date) return value.toISOString()
  if (value === null || typeof value !== 'object') return typeof value === 'function' || typeof value === 'symbol' ? undefined : value
  if (depth >= MAX_FIELD_DEPTH) return '[…]'
  // PeerIds, multiaddrs and the like: their string form is what an operator wants
  if (!Array.isArray(value) && Object.getPrototypeOf(value) !== Object.prototype && Object.getPrototypeOf(value) !== null &&
    typeof (value as { toString?: unknown }).toString === 'function' && (value as { toString: () => string }).toString !== Object.prototype.toString) {
    return String(value)
  }
  if (Array.isArray(value)) return value.map(item => redact(item, depth + 1))
  const out: LogFields = {}
  for (const [name, item] of Object.entries(value)) {
    if (REDACTED_FIELDS.has(name)) continue
    out[name] = redact(item, depth + 1)
  }
  return out
}

function prettyValue (value: unknown): string {
  if (typeof value === 'string') return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value)
  return oneLine(JSON.stringify(value) ?? String(value))
}

function oneLine (text: string): string {
  return text.replace(/\s*\n\s*/g, ' ')
}
