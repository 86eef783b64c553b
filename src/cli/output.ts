import { unserializable, type UnserializableEntry } from '../inbox/serialize.js'
import type { InboxEntry } from '../inbox/index.js'
import { stringifyOr } from '../json/index.js'
import type { MoltMessage } from '../moltspeak/index.js'
import type { AgentCard } from '../services/card/index.js'
import type { DiscoveredAgent, KnownPeer } from '../discovery/index.js'
import type { RelayLimits, RelayStats } from '../relay/index.js'
import { DEFAULT_LOG_LEVEL, StructuredLogger, levelEnabled, type LogFields, type LogLevel, type LogOptions } from '../logging/index.js'

/** One event line of a long-running command (`molt agent`, `molt relay`) */
export interface EventLine {
  /** What the log line carries besides ts/level/msg. Never payloads or keys (REDACTED_FIELDS are dropped anyway) */
  fields?: LogFields
  /** The pretty form; without it a pretty event is a `<ts> <LEVEL> <msg> k=v` line on stderr */
  human?: string | string[]
  /** The pretty form is a hint for people: stderr, and no line at all with --json (like note()) */
  note?: boolean
  /** The --json document, when it is not `{ event: msg, ...fields }` */
  json?: unknown
  /** What --json prints when `json` cannot be serialized. @default an `{"error":…}` line */
  fallback?: (err: Error) => unknown
}

/** Streams whose reader went away: nothing more is written to them */
const closedStreams = new WeakSet<NodeJS.WritableStream>()
const watchedStreams = new WeakSet<NodeJS.WritableStream>()

/**
 * When the reader of a pipe goes away (`molt agent | head`, a supervisor that
 * exits), the next write fails with EPIPE, which Node reports as an 'error'
 * event that, unhandled, kills the process. Instead the stream is marked
 * closed and the command carries on without that output: `molt agent` and
 * `molt relay` keep running (stop them with SIGTERM), one-shot commands finish
 * their work. A closed stdout is said once on stderr.
 */
export function watchPipe (stream: NodeJS.WritableStream, name: string, tell?: NodeJS.WritableStream): void {
  if (watchedStreams.has(stream)) return
  watchedStreams.add(stream)
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (closedStreams.has(stream)) return
    closedStreams.add(stream)
    if (tell != null && !closedStreams.has(tell)) {
      tell.write(`molt: ${name} closed (${err.code ?? err.message}): output there stops, the command carries on\n`)
    }
  })
}

/** Whether `stream` lost its reader (see watchPipe) */
export function streamClosed (stream: NodeJS.WritableStream): boolean {
  return closedStreams.has(stream)
}

/**
 * The CLI's only way to print. Human text by default; with --json every
 * result is one JSON document per line on stdout. Errors go to stderr.
 */
export class Output {
  private logging?: LogOptions
  private logger?: StructuredLogger

  constructor (
    readonly json: boolean,
    private readonly stdout: NodeJS.WritableStream = process.stdout,
    private readonly stderr: NodeJS.WritableStream = process.stderr
  ) {
    watchPipe(stdout, 'stdout', stderr)
    watchPipe(stderr, 'stderr')
  }

  /** Write unless the stream's reader went away */
  private write (stream: NodeJS.WritableStream, text: string): void {
    if (!closedStreams.has(stream)) stream.write(text)
  }

  /** A result: `human` lines in text mode, `value` as one JSON line in --json mode */
  result (human: string | string[], value: unknown): void {
    if (this.json) this.jsonLine(value)
    else this.text(human)
  }

  /** Plain text, printed in either mode (help) */
  text (lines: string | string[]): void {
    if (Array.isArray(lines) && lines.length === 0) return
    this.write(this.stdout, (Array.isArray(lines) ? lines.join('\n') : lines) + '\n')
  }

  /** One JSON line; a value that cannot be serialized prints as `{"error":…}` rather than throwing */
  jsonLine (value: unknown, fallback: (err: Error) => unknown = unprintable): void {
    this.write(this.stdout, stringifyOr(value, fallback) + '\n')
  }

  /** A line for people on stdout; nothing in --json mode */
  line (text: string): void {
    if (!this.json) this.text(text)
  }

  /** A hint for people, kept off stdout so it never mixes with results */
  note (text: string): void {
    if (!this.json) this.write(this.stderr, text + '\n')
  }

  /**
   * From now on event lines are filtered by `level`; with format `json` every
   * event line and error is a `{"ts","level","msg",…}` line on stdout (stderr
   * stays for libp2p's `DEBUG=` output). Set by `molt agent` and `molt relay`.
   */
  useLogging (options: LogOptions): void {
    this.logging = options
    // pretty log lines are diagnostics (stderr); JSON log lines are the command's output stream
    // batch: per-message info lines are written together (at most LOG_BATCH_INTERVAL later), off the message's path
    this.logger = new StructuredLogger({ ...options, stream: options.format === 'json' ? this.stdout : this.stderr, batch: true })
  }

  /** Whether an event at `level` would be written */
  enabled (level: LogLevel): boolean {
    return levelEnabled(this.logging?.level ?? DEFAULT_LOG_LEVEL, level)
  }

  /**
   * An event line: a JSON log line (log format json), the `{"event":…}`
   * document (--json), or the pretty text. Dropped below the log level.
   */
  event (level: LogLevel, msg: string, line: EventLine = {}): void {
    if (!this.enabled(level)) return
    if (this.logging?.format === 'json') {
      this.logger?.log(level, msg, line.fields)
    } else if (this.json) {
      if (line.note !== true) this.jsonLine(line.json ?? { event: msg, ...line.fields }, line.fallback)
    } else if (line.human === undefined) {
      (this.logger ?? new StructuredLogger({ level: 'debug', stream: this.stderr })).log(level, msg, line.fields)
    } else if (line.note === true || level === 'error' || level === 'warn') {
      this.write(this.stderr, (Array.isArray(line.human) ? line.human.join('\n') : line.human) + '\n')
    } else {
      this.text(line.human)
    }
  }

  /**
   * A received message: one line either way; a log line (json log format) names it without its payload.
   * `housekeeping`: a ping/pong that is not in the inbox (no cursor), marked so.
   * `numbered`: the human line starts with `#<cursor>`, as `molt inbox` lists them (what --after takes)
   */
  message (entry: InboxEntry | UnserializableEntry, options: { housekeeping?: boolean, numbered?: boolean } = {}): void {
    // nothing is built for a line that is not written
    if (!this.enabled('message' in entry ? 'info' : 'warn')) return
    if (!('message' in entry)) {
      this.event('warn', 'unserializable', { fields: { cursor: entry.cursor, peer: entry.peer, error: entry.error.message }, human: formatEntry(entry), json: { event: 'message', ...entry } })
      return
    }
    const m = entry.message
    const { cursor, ...rest } = entry
    const where = options.housekeeping === true ? { housekeeping: true } : { cursor }
    this.event('info', 'message', {
      fields: { ...where, id: m.id, op: m.op, ...(m.re != null ? { re: m.re } : {}), from: `${m.from.agent}@${m.from.org}`, peer: entry.peer, route: entry.route, signed: m.sig != null },
      human: (options.numbered === true ? `#${cursor} ` : '') + formatEntry(entry) + (options.housekeeping === true ? ' (housekeeping, not stored)' : ''),
      json: { event: 'message', ...where, ...rest },
      // a message nested past JSON.stringify's stack: its placeholder (cursor, error) rather than a throw in the listener
      fallback: err => ({ event: 'message', ...unserializable(entry, err) })
    })
  }

  error (code: string, message: string): void {
    if (this.logging?.format === 'json') {
      this.logger?.error(message, { code })
      return
    }
    this.write(this.stderr, `molt: ${message}\n`)
    if (this.json) this.jsonLine({ error: { code, message } })
  }

  /** Resolves once everything written so far is handed to the OS */
  async flush (): Promise<void> {
    this.logger?.flush()
    await Promise.all([this.stdout, this.stderr].filter(stream => !closedStreams.has(stream)).map(async stream => new Promise<void>((resolve) => {
      stream.write('', () => { resolve() })
    })))
  }
}

function unprintable (err: Error): unknown {
  return { error: { code: 'E_INTERNAL', message: `this result cannot be printed as JSON: ${err.message}` } }
}

/** `<time> <op> from <agent>@<org> (<peer short>) id=<id>` */
export function formatEntry (entry: InboxEntry | UnserializableEntry): string {
  if (!('message' in entry)) return `${new Date(entry.receivedAt).toISOString()} (unprintable) from ${shortPeer(entry.peer)} cursor=${entry.cursor}: ${entry.error.message}`
  const m = entry.message
  const re = m.re != null ? ` re=${m.re}` : ''
  return `${new Date(entry.receivedAt).toISOString()} ${m.op} from ${m.from.agent}@${m.from.org} (${shortPeer(entry.peer)}) id=${m.id}${re}`
}

/** A reply for people: a header line, then the payload */
export function formatReply (reply: MoltMessage): string[] {
  return [
    `${reply.op} from ${reply.from.agent}@${reply.from.org} re=${reply.re ?? '-'} id=${reply.id}`,
    JSON.stringify(reply.p, null, 2)
  ]
}

export function shortPeer (peerId: string): string {
  return peerId.length > 12 ? `…${peerId.slice(-8)}` : peerId
}

/** An agent card for people; `verified` says the signature was checked */
export function formatCard (card: AgentCard, now = Date.now()): string[] {
  return [
    `Agent     ${card.name}@${card.org}`,
    `PeerId    ${card.peer_id}`,
    `DID       ${card.did}`,
    `Key       ${card.key}`,
    ...(card.description !== undefined ? [`About     ${card.description}`] : []),
    `Offers    ${card.capabilities.length > 0 ? card.capabilities.map(c => c.name).join(', ') : '(no capabilities)'}`,
    ...card.capabilities.filter(c => c.description !== undefined).map(c => `  ${c.name}: ${c.description as string}`),
    `Speaks    MoltSpeak ${card.protocol_versions.join(', ')}; accepts ${card.supported_cls.join(', ')}`,
    `Issued    ${new Date(card.issued).toISOString()} (${relativeTime(card.issued, now)})`,
    `Expires   ${new Date(card.expires).toISOString()} (${untilTime(card.expires, now)})`,
    'Signature verified',
    card.addresses.length > 0 ? 'Addresses:' : 'Addresses (none)',
    ...card.addresses.map(a => `  ${a}`)
  ]
}

/** One found agent: a header line, then its addresses */
export function formatAgent (agent: DiscoveredAgent): string[] {
  const { card } = agent
  return [
    `${agent.peerId}  ${card.name}@${card.org}  [${card.capabilities.map(c => c.name).join(', ')}]  (${agent.source})`,
    ...card.addresses.map(a => `  ${a}`)
  ]
}

/** Known peers (agents and relays) as a table, most recently seen first */
export function formatPeers (peers: KnownPeer[], now = Date.now()): string[] {
  const rows = peers.map(peer => [
    peer.status,
    peer.role ?? '-',
    peer.status === 'connected' ? 'now' : relativeTime(peer.lastSeen, now),
    peer.route ?? '-',
    peer.name !== undefined ? `${peer.name}@${peer.org ?? '?'}` : peer.role === 'relay' ? '-' : '(no card yet)',
    peer.rttMs !== undefined ? `${peer.rttMs.toFixed(1)} ms` : '-',
    peer.peerId
  ])
  const header = ['STATUS', 'ROLE', 'LAST SEEN', 'ROUTE', 'AGENT', 'RTT', 'PEER']
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map(r => r[i].length)))
  return [header, ...rows].map(row => row.map((cell, i) => i === row.length - 1 ? cell : cell.padEnd(widths[i])).join('  '))
}

/** A relay's limits for people (`molt relay`) */
export function formatRelayLimits (limits: RelayLimits): string[] {
  return [
    `Reservations: up to ${limits.maxReservations} (${limits.maxReservationsPerIp} per IP), each for ${formatMs(limits.reservationTtlMs)}`,
    `Relayed connections: ${formatBytes(limits.connectionDataLimitBytes)} (both directions) or ${formatMs(limits.connectionDurationLimitMs)} each`,
    `Bandwidth budget: ${limits.bandwidthBytesPerSecond > 0 ? `${formatBytes(limits.bandwidthBytesPerSecond)}/s over ${formatMs(limits.bandwidthWindowMs)}` : 'none'}`
  ]
}

/** One line of relay stats */
/** The mailbox part of a relay stats line */
export function formatMailboxStats (stats: { messages: number, bytes: number, recipients: number, oldestAt?: number }): string {
  const age = stats.oldestAt != null ? `, oldest ${Math.round((Date.now() - stats.oldestAt) / 1000)} s` : ''
  return `mailbox: ${stats.messages} boxes (${formatBytes(stats.bytes)}) for ${stats.recipients} agents${age}`
}

export function formatRelayStats (stats: RelayStats): string {
  const refused = (counts: Record<string, number>): string => {
    const parts = Object.entries(counts).filter(([, n]) => n > 0).map(([reason, n]) => `${reason} ${n}`)
    return parts.length > 0 ? parts.join(', ') : 'none'
  }
  return `${stats.reservations} reservations, ${stats.relayedConnections} relayed connections (${stats.relayedConnectionsTotal} since start), ` +
    `${formatBytes(stats.relayedBytes)} relayed (${formatBytes(stats.relayedBytesPerSecond)}/s), ${stats.peers} peers; ` +
    `refused reservations: ${refused(stats.reservationsRefused)}; refused relayed connections: ${refused(stats.relayedConnectionsRefused)}` +
    (stats.relayedConnectionsCut > 0 ? `; closed for memory: ${stats.relayedConnectionsCut}` : '')
}

/** `512 B`, `1.5 KiB`, `64.0 MiB` */
export function formatBytes (bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let value = bytes
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`
}

/** `500 ms`, `3 s`, `30 min`, `2 h` */
function formatMs (ms: number): string {
  if (ms < 1000) return `${ms} ms`
  if (ms < 60_000) return `${+(ms / 1000).toFixed(1)} s`
  if (ms < 3_600_000) return `${+(ms / 60_000).toFixed(1)} min`
  return `${+(ms / 3_600_000).toFixed(1)} h`
}

/** `just now`, `12s ago`, `3m ago`, `5h ago`, `2d ago` */
export function relativeTime (then: number, now = Date.now()): string {
  const seconds = Math.max(0, Math.round((now - then) / 1000))
  if (seconds < 1) return 'just now'
  return `${duration(seconds)} ago`
}

function untilTime (then: number, now: number): string {
  const seconds = Math.round((then - now) / 1000)
  return seconds <= 0 ? 'expired' : `in ${duration(seconds)}`
}

function duration (seconds: number): string {
  if (seconds < 60) return `${seconds}s`
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m`
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)}h`
  return `${Math.floor(seconds / 86_400)}d`
}
