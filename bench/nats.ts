/**
 * Baseline for the mailbox bench: NATS JetStream (Debian's nats-server, file
 * store) async publish with acks, over a minimal client of NATS's text
 * protocol written here (no client dependency): PUBs are pipelined, each with
 * a reply subject; JetStream answers each with a PubAck once the message is
 * in the stream (file storage, the server's default sync policy).
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process'
import { connect, type Socket } from 'node:net'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export function natsServerPath (): string | undefined {
  for (const candidate of ['nats-server', '/usr/sbin/nats-server', '/usr/bin/nats-server']) {
    try {
      execFileSync(candidate, ['--version'], { stdio: 'ignore' })
      return candidate
    } catch {}
  }
  return undefined
}

class NatsConnection {
  private buffer = ''
  private readonly waiters = new Map<string, (payload: string) => void>()
  private onMsgCount?: () => void

  constructor (readonly socket: Socket) {
    socket.setEncoding('latin1')
    socket.on('data', (chunk: string) => { this.buffer += chunk; this.parse() })
  }

  private parse (): void {
    for (;;) {
      const eol = this.buffer.indexOf('\r\n')
      if (eol < 0) return
      const line = this.buffer.slice(0, eol)
      if (line.startsWith('MSG ')) {
        const parts = line.split(' ')
        const size = Number(parts[parts.length - 1])
        if (this.buffer.length < eol + 2 + size + 2) return
        const payload = this.buffer.slice(eol + 2, eol + 2 + size)
        this.buffer = this.buffer.slice(eol + 2 + size + 2)
        const subject = parts[1]
        const waiter = this.waiters.get(subject)
        if (waiter != null) { this.waiters.delete(subject); waiter(payload) } else this.onMsgCount?.()
        continue
      }
      this.buffer = this.buffer.slice(eol + 2)
      if (line === 'PING') this.socket.write('PONG\r\n')
      else if (line.startsWith('-ERR')) throw new Error(`nats: ${line}`)
    }
  }

  async request (subject: string, body: string): Promise<string> {
    const reply = `_INBOX.req.${Math.random().toString(36).slice(2)}`
    const answer = new Promise<string>(resolve => { this.waiters.set(reply, resolve) })
    this.socket.write(`PUB ${subject} ${reply} ${Buffer.byteLength(body)}\r\n${body}\r\n`)
    return answer
  }

  /** Publish `count` payloads pipelined, `window` unacknowledged at most; resolves when all are acked */
  async publishAll (subject: string, payload: string, count: number, window: number): Promise<void> {
    let sent = 0
    let acked = 0
    await new Promise<void>((resolve) => {
      const pump = (): void => {
        let chunk = ''
        while (sent < count && sent - acked < window) {
          chunk += `PUB ${subject} _INBOX.ack.${sent} ${payload.length}\r\n${payload}\r\n`
          sent++
        }
        if (chunk !== '') this.socket.write(chunk)
      }
      this.onMsgCount = () => {
        acked++
        if (acked === count) resolve()
        else if (sent - acked < window / 2) pump()
      }
      pump()
    })
  }
}

export interface NatsResult { published: number, seconds: number, perSecond: number }

/** JetStream file-store async publish: `messages` of `size` bytes, acked */
export async function runNatsBaseline (messages: number, size: number): Promise<NatsResult | undefined> {
  const binary = natsServerPath()
  if (binary === undefined) return undefined
  const dir = await mkdtemp(join(tmpdir(), 'molt-bench-nats-'))
  const port = 20_000 + Math.floor(Math.random() * 20_000)
  const server: ChildProcess = spawn(binary, ['-js', '-sd', dir, '-a', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' })
  try {
    let socket: Socket | undefined
    for (let i = 0; i < 100 && socket == null; i++) {
      socket = await new Promise<Socket | undefined>((resolve) => {
        const s = connect(port, '127.0.0.1', () => { resolve(s) })
        s.once('error', () => { resolve(undefined) })
      })
      if (socket == null) await new Promise(resolve => setTimeout(resolve, 100))
    }
    if (socket == null) throw new Error('nats-server did not start')
    const nats = new NatsConnection(socket)
    socket.write('CONNECT {"verbose":false,"pedantic":false,"headers":true,"no_responders":true}\r\nSUB _INBOX.> 1\r\n')
    const created = await nats.request('$JS.API.STREAM.CREATE.bench', JSON.stringify({ name: 'bench', subjects: ['bench.>'], storage: 'file', retention: 'limits', discard: 'old' }))
    if (created.includes('"error"')) throw new Error(`nats stream create: ${created}`)
    const payload = 'x'.repeat(size)
    await nats.publishAll('bench.warm', payload, 2000, 4096)
    const started = performance.now()
    await nats.publishAll('bench.msg', payload, messages, 4096)
    const seconds = (performance.now() - started) / 1000
    socket.destroy()
    return { published: messages, seconds, perSecond: messages / seconds }
  } finally {
    server.kill('SIGTERM')
    await new Promise(resolve => server.once('exit', resolve))
    await rm(dir, { recursive: true, force: true })
  }
}
