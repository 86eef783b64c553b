import type { InboxEntry } from '../inbox/index.js'
import type { MoltMessage } from '../moltspeak/index.js'

/**
 * The CLI's only way to print. Human text by default; with --json every
 * result is one JSON document per line on stdout. Errors go to stderr.
 */
export class Output {
  constructor (
    readonly json: boolean,
    private readonly stdout: NodeJS.WritableStream = process.stdout,
    private readonly stderr: NodeJS.WritableStream = process.stderr
  ) {}

  /** A result: `human` lines in text mode, `value` as one JSON line in --json mode */
  result (human: string | string[], value: unknown): void {
    if (this.json) this.jsonLine(value)
    else this.text(human)
  }

  /** Plain text, printed in either mode (help) */
  text (lines: string | string[]): void {
    if (Array.isArray(lines) && lines.length === 0) return
    this.stdout.write((Array.isArray(lines) ? lines.join('\n') : lines) + '\n')
  }

  jsonLine (value: unknown): void {
    this.stdout.write(JSON.stringify(value) + '\n')
  }

  /** A line for people on stdout; nothing in --json mode */
  line (text: string): void {
    if (!this.json) this.text(text)
  }

  /** A hint for people, kept off stdout so it never mixes with results */
  note (text: string): void {
    if (!this.json) this.stderr.write(text + '\n')
  }

  /** A received message: one line either way */
  message (entry: InboxEntry): void {
    if (this.json) this.jsonLine({ event: 'message', ...entry })
    else this.text(formatEntry(entry))
  }

  error (code: string, message: string): void {
    this.stderr.write(`molt: ${message}\n`)
    if (this.json) this.jsonLine({ error: { code, message } })
  }

  /** Resolves once everything written so far is handed to the OS */
  async flush (): Promise<void> {
    await Promise.all([this.stdout, this.stderr].map(async stream => new Promise<void>((resolve) => {
      stream.write('', () => { resolve() })
    })))
  }
}

/** `<time> <op> from <agent>@<org> (<peer short>) id=<id>` */
export function formatEntry (entry: InboxEntry): string {
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
