import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { TestNetwork } from '../support/nodes.js'
import { eventually } from '../support/eventually.js'
import { rawSpeak, closeRawStreams } from '../support/raw-speak.js'
import { CliSandbox } from '../support/cli.js'
import { skipWithout } from '../support/tools.js'
import { createMessage, type MoltNode } from '../../src/index.js'
import { startApiServer, loadOrCreateApiToken, type ApiServer } from '../../src/api/index.js'
import { createRelayNode, type RelayNode } from '../../src/relay/index.js'
import { createRelayMetrics, startMetricsServer, type MetricsServer } from '../../src/metrics/index.js'

/** the exposition checks need promtool (Debian package prometheus; npm test installs it as root) */
const NO_PROMTOOL = skipWithout('test/integration/metrics.test.ts (promtool checks)', 'promtool')
const net = new TestNetwork()
const sandbox = new CliSandbox()
let alice: MoltNode
let bob: MoltNode
let relay: RelayNode
let relayMetrics: MetricsServer
let api: ApiServer
let token: string
const relayDirs: string[] = []

beforeAll(async () => {
  const relayDir = await mkdtemp(join(tmpdir(), 'molt-metrics-relay-'))
  relayDirs.push(relayDir)
  relay = await createRelayNode({
    dataDir: relayDir,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    libp2p: { connectionManager: { inboundConnectionThreshold: 1000 } }
  })
  relayMetrics = await startMetricsServer(createRelayMetrics(relay))
  alice = await net.node({ agent: { name: 'alice', org: 'acme' } })
  // bob keeps a reservation on the relay: both sides' reservation gauges move
  bob = await net.node({ agent: { name: 'bob', org: 'widgets' }, relays: [relay.getMultiaddrs()[0].toString()] })
  await net.introduce()
  bob.handle('query', (message) => ({ status: 'success', data: message.p }))
  token = await loadOrCreateApiToken(alice.dataDir)
  api = await startApiServer(alice, { token })
})

afterAll(async () => {
  await closeRawStreams()
  await api?.close()
  await relayMetrics?.close()
  await net.cleanup()
  await relay?.stop({ drainMs: 0 })
  await sandbox.cleanup()
  await Promise.all(relayDirs.map(async dir => rm(dir, { recursive: true, force: true })))
})

/** One sample of the text exposition: `name{labels} value` → value, 0 when absent */
function sample (text: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)/.exec(line)
    if (match == null || match[1] !== name) continue
    const found = Object.fromEntries([...(match[2] ?? '').matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)].map(m => [m[1], m[2]]))
    if (Object.entries(labels).every(([k, v]) => found[k] === v)) return Number(match[3])
  }
  return 0
}

/** `promtool check metrics` with the exposition on stdin; fails loudly if promtool is not installed */
async function promtoolCheck (text: string): Promise<{ code: number | null, output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('promtool', ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] })
    let output = ''
    child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
    child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
    child.on('error', (err: NodeJS.ErrnoException) => {
      reject(err.code === 'ENOENT'
        ? new Error('promtool is not installed (it is in the Debian package "prometheus": apt-get install -y prometheus); the metrics exposition cannot be checked')
        : err)
    })
    child.on('close', (code) => { resolve({ code, output }) })
    child.stdin.on('error', () => {})
    child.stdin.end(text)
  })
}

async function scrapeAlice (): Promise<Response> {
  return fetch(`${api.url}/metrics`, { headers: { authorization: `Bearer ${token}` } })
}

describe('agent metrics', () => {
  it('GET /metrics needs the token and answers the text format', async () => {
    const denied = await fetch(`${api.url}/metrics`)
    expect(denied.status).toBe(401)
    const res = await scrapeAlice()
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
    const text = await res.text()
    expect(text).toContain('# TYPE molt_messages_sent_total counter')
    expect(text).toContain('# TYPE molt_request_duration_seconds histogram')
    expect(text).toMatch(/^molt_process_cpu_user_seconds_total /m)
  })

  it('traffic between two nodes moves the counters on both sides', async () => {
    const before = await alice.metrics.text()
    const bobBefore = await bob.metrics.text()
    for (let i = 0; i < 3; i++) {
      const reply = await alice.request(bob.peerId, { op: 'query', p: { domain: 'metrics', n: i } }, { timeout: 5000 })
      expect(reply.op).toBe('respond')
    }
    await alice.send(bob.peerId, { op: 'hello', p: { capabilities: [] } })
    const after = await (await scrapeAlice()).text()
    const direct = { route: 'direct' }
    expect(sample(after, 'molt_messages_sent_total', { op: 'query', ...direct }) - sample(before, 'molt_messages_sent_total', { op: 'query', ...direct })).toBe(3)
    expect(sample(after, 'molt_messages_sent_total', { op: 'hello', ...direct }) - sample(before, 'molt_messages_sent_total', { op: 'hello', ...direct })).toBe(1)
    expect(sample(after, 'molt_messages_received_total', { op: 'respond', ...direct }) - sample(before, 'molt_messages_received_total', { op: 'respond', ...direct })).toBe(3)
    expect(sample(after, 'molt_request_duration_seconds_count') - sample(before, 'molt_request_duration_seconds_count')).toBe(3)
    expect(sample(after, 'molt_request_duration_seconds_bucket', { le: '+Inf' })).toBe(sample(after, 'molt_request_duration_seconds_count'))
    expect(sample(after, 'molt_peers', { status: 'connected' })).toBeGreaterThanOrEqual(1)
    expect(sample(after, 'molt_inbox_messages')).toBeGreaterThanOrEqual(3)

    const bobAfter = await eventually(async () => {
      const text = await bob.metrics.text()
      // a reply counts as sent once the requester acknowledged it, which may follow the requester's next
      // message (an ACK nobody waits on is held ≤ 5 ms for a frame going its way: protocols/speak.md)
      const repliesSent = sample(text, 'molt_messages_sent_total', { op: 'respond', ...direct }) - sample(bobBefore, 'molt_messages_sent_total', { op: 'respond', ...direct })
      return sample(text, 'molt_messages_received_total', { op: 'hello', ...direct }) > sample(bobBefore, 'molt_messages_received_total', { op: 'hello', ...direct }) && repliesSent >= 3 && text
    }, 5000, 'bob counting the hello and its 3 acknowledged replies')
    expect(sample(bobAfter, 'molt_messages_received_total', { op: 'query', ...direct }) - sample(bobBefore, 'molt_messages_received_total', { op: 'query', ...direct })).toBe(3)
    expect(sample(bobAfter, 'molt_messages_sent_total', { op: 'respond', ...direct }) - sample(bobBefore, 'molt_messages_sent_total', { op: 'respond', ...direct })).toBe(3)
  })

  it('a refused message counts under its MoltSpeak code, a duplicate as a duplicate', async () => {
    const before = await bob.metrics.text()
    const raw = await rawSpeak(alice, bob)
    raw.message(1, { ...createMessage({ op: 'query', from: { agent: 'alice', org: 'acme' }, to: { agent: 'bob', org: 'widgets' }, p: {} }), v: '0.2' } as any)
    const good = createMessage({ op: 'hello', from: { agent: 'alice', org: 'acme' }, to: { agent: 'bob', org: 'widgets' }, p: { capabilities: [] } })
    raw.message(2, good)
    raw.message(3, good)
    await eventually(async () => {
      const text = await bob.metrics.text()
      return sample(text, 'molt_messages_refused_total', { code: 'E_VERSION' }) - sample(before, 'molt_messages_refused_total', { code: 'E_VERSION' }) === 1 &&
        sample(text, 'molt_messages_duplicate_total') - sample(before, 'molt_messages_duplicate_total') === 1
    }, 5000, 'the refusal (E_VERSION) and the duplicate to be counted')
  })

  it('a failed send counts under its reason', async () => {
    const before = await alice.metrics.text()
    await expect(alice.send(bob.peerId, { op: 'query', p: { domain: 'x', blob: 'a'.repeat(1_100_000) } })).rejects.toMatchObject({ name: 'MessageTooLargeError' })
    const after = await alice.metrics.text()
    expect(sample(after, 'molt_send_failures_total', { reason: 'too_large' }) - sample(before, 'molt_send_failures_total', { reason: 'too_large' })).toBe(1)
  })

  it('the reservation gauge counts relays held', async () => {
    await eventually(async () => sample(await bob.metrics.text(), 'molt_relay_reservations') === 1, 10_000, 'bob\'s reservation on the relay')
  })

  it.skipIf(NO_PROMTOOL)('the exposition passes promtool check metrics', async () => {
    const text = await (await scrapeAlice()).text()
    for (const name of ['molt_outbox_messages', 'molt_outbox_bytes', 'molt_trust_attestations', 'molt_send_outcomes_total']) expect(text).toContain(`# TYPE ${name}`)
    const { code, output } = await promtoolCheck(text)
    expect(output).toBe('')
    expect(code).toBe(0)
  })
})

describe('relay metrics', () => {
  it('the metrics server answers on 127.0.0.1 with the relay figures', async () => {
    expect(relayMetrics.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/)
    await eventually(() => relay.stats().reservations === 1, 10_000, 'bob\'s reservation')
    const res = await fetch(relayMetrics.url)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
    const text = await res.text()
    expect(sample(text, 'molt_relay_reservations')).toBe(1)
    expect(text).toContain('# TYPE molt_relay_reservations_refused_total counter')
    expect(sample(text, 'molt_relay_reservations_refused_total', { reason: 'per-ip-limit' })).toBe(relay.stats().reservationsRefused['per-ip-limit'])
    expect(text).toMatch(/^molt_relay_connections_relayed 0$/m)
    expect(text).toMatch(/^molt_relay_connections_relayed_total \d+$/m)
    expect(sample(text, 'molt_relay_bytes_total')).toBeGreaterThan(0)
    expect((await fetch(relayMetrics.url.replace('/metrics', '/other'))).status).toBe(404)
  })

  it.skipIf(NO_PROMTOOL)('the relay exposition passes promtool check metrics', async () => {
    const { code, output } = await promtoolCheck(await (await fetch(relayMetrics.url)).text())
    expect(output).toBe('')
    expect(code).toBe(0)
  })

  it('molt relay --metrics-port serves /metrics on 127.0.0.1', async () => {
    const dir = await sandbox.dir()
    const cli = await sandbox.start(['relay', '--listen', '/ip4/127.0.0.1/tcp/0', '--json', '--data-dir', dir, '--stats-interval', '0', '--metrics-port', '0'])
    // a deadline for a process start on a busy machine, as CliSandbox.agent's (this test took 18 s of its 30 at load 20-40)
    const listening = await cli.waitForJson<{ metrics: string, mailbox: { maxMessagesPerRecipient: number } }>(v => v.event === 'listening', 60_000)
    expect(listening.metrics).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/)
    expect(listening.mailbox.maxMessagesPerRecipient).toBe(10_000)
    const text = await (await fetch(listening.metrics)).text()
    expect(text).toMatch(/^molt_relay_reservations 0$/m)
    // the mailbox's series exist from the start (0), with every refusal reason
    expect(text).toMatch(/^molt_mailbox_messages 0$/m)
    expect(text).toMatch(/^molt_mailbox_deposits_refused_total\{reason="mailbox-full"\} 0$/m)
    // libp2p's own metrics are exported beside molt's, and the relay's trust gossip
    expect(text).toMatch(/^libp2p_\w+/m)
    expect(text).toMatch(/^molt_trust_attestations 0$/m)
    if (!NO_PROMTOOL) {
      const { code, output } = await promtoolCheck(text)
      expect(output).toBe('')
      expect(code).toBe(0)
    }
    expect(await cli.stop('SIGTERM')).toEqual({ code: 0, signal: null })
  }, 90_000)
})
