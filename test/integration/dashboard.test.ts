import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { mkdtemp, rm } from 'node:fs/promises'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium, type Browser, type Page } from 'playwright-core'
import { TestNetwork } from '../support/nodes.js'
import { CHROMIUM, skipWithout } from '../support/tools.js'
import { eventually } from '../support/eventually.js'
import type { MoltNode } from '../../src/index.js'
import { createRelayNode, type RelayNode } from '../../src/relay/index.js'
import { createRelayMetrics, startMetricsServer, type MetricsServer } from '../../src/metrics/index.js'
import { createRelayDashboard, mailboxStatus, ThroughputHistory, type RelayDashboard, type RelayStatus } from '../../src/relay/dashboard/index.js'

/** Debian's chromium (npm test installs it: test/setup/tools.ts); playwright-core never downloads a browser */
const NO_CHROMIUM = skipWithout('test/integration/dashboard.test.ts (in Chromium)', 'chromium')
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync']
/** Peer-supplied text (identify's agent version) that would run if the page ever used innerHTML */
const HOSTILE_AGENT = '<img src=x onerror="window.__pwned=1">evil-agent'

const net = new TestNetwork()
let dir: string
let relay: RelayNode
let dashboard: RelayDashboard
let server: MetricsServer
let base: string
let browser: Browser

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'molt-dashboard-'))
  relay = await createRelayNode({
    dataDir: dir,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    lock: false,
    // every test peer dials from 127.0.0.1
    libp2p: { connectionManager: { inboundConnectionThreshold: 1000 } }
  })
  // sample faster than the default 2 s so the chart fills within the test
  dashboard = createRelayDashboard(relay, { sampleIntervalMs: 250 })
  server = await startMetricsServer(createRelayMetrics(relay, { processMetrics: false }), 0, { routes: dashboard.handle })
  base = server.url.replace(/\/metrics$/, '/')
  if (!NO_CHROMIUM) browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 15_000 })
})

afterAll(async () => {
  await browser?.close()
  await server?.close()
  dashboard?.close()
  await net.cleanup()
  await relay?.stop({ drainMs: 0 })
  if (dir != null) await rm(dir, { recursive: true, force: true })
})

const relayAddress = (): string => relay.getMultiaddrs()[0].toString()

/** An agent reserving on the relay; `hidden` ones listen nowhere, so the relay is the only way to them */
async function agent (name: string, options: { userAgent?: string, hidden?: boolean } = {}): Promise<MoltNode> {
  const { userAgent, hidden = false } = options
  const node = await net.node({
    agent: { name },
    relays: [relayAddress()],
    mdns: false,
    ...(hidden ? { listen: [] } : {}),
    ...(userAgent != null ? { libp2p: { nodeInfo: { userAgent } } } : {})
  })
  await eventually(() => relay.libp2p.services.relay.reservations.has(node.peerId), 10_000, `${name}'s reservation on the relay`)
  return node
}

/** GET with an explicit Host header (fetch() will not send a forged one) */
async function getWithHost (url: string, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    request(url, { headers: { host } }, (res) => {
      res.resume()
      resolve(res.statusCode ?? 0)
    }).on('error', reject).end()
  })
}

describe('relay dashboard over HTTP', () => {
  it('serves a self-contained page under a strict CSP, and the status as JSON', async () => {
    for (const path of ['', 'dashboard']) {
      const res = await fetch(base + path)
      expect(res.status).toBe(200)
      expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8')
      const csp = res.headers.get('content-security-policy') ?? ''
      expect(csp).toContain("default-src 'none'")
      expect(csp).toMatch(/script-src 'sha256-[A-Za-z0-9+/=]+'/)
      const html = await res.text()
      // nothing is loaded from anywhere: no src/href attributes, no URLs but the XML namespace
      expect(html).not.toMatch(/\s(src|href)=/)
      expect(html.match(/https?:\/\/[^\s'"]+/g)).toEqual(['http://www.w3.org/2000/svg'])
    }
    const res = await fetch(`${base}api/status`)
    expect(res.status).toBe(200)
    expect(res.headers.get('cache-control')).toBe('no-store')
    const status = await res.json() as RelayStatus
    expect(status).toMatchObject({ v: 1, peerId: relay.peerId.toString(), version: '0.1.0', shuttingDown: false })
    expect(status.addresses).toEqual([relayAddress()])
    expect(Object.keys(status.refused.reservations).sort()).toEqual(['bandwidth', 'global-limit', 'per-ip-limit', 'shutting-down'])
    expect(status.throughput.intervalMs).toBe(250)
    // metrics still answer on the same port
    expect(await (await fetch(server.url)).text()).toMatch(/^molt_relay_reservations \d+$/m)
  })

  it('answers only to loopback Host names (DNS rebinding) and only GET/HEAD', async () => {
    expect(await getWithHost(`${base}api/status`, 'attacker.example')).toBe(403)
    expect(await getWithHost(base, 'attacker.example:80')).toBe(403)
    expect(await getWithHost(`${base}api/status`, 'localhost:9999')).toBe(200)
    expect((await fetch(`${base}api/status`, { method: 'POST' })).status).toBe(405)
    expect((await fetch(`${base}nothing-here`)).status).toBe(404)
  })
})

describe.skipIf(NO_CHROMIUM)('relay dashboard in Chromium', () => {
  let page: Page
  const pageErrors: string[] = []

  afterAll(async () => {
    await page?.close()
  })

  it('shows an agent\'s reservation, then a second one without reloading, as peer-supplied text', async () => {
    const alice = await agent('alice', { userAgent: HOSTILE_AGENT, hidden: true })
    alice.handle('query', () => ({ status: 'success', data: {} }))
    page = await browser.newPage()
    page.on('pageerror', (err) => { pageErrors.push(err.message) })
    page.on('console', (msg) => { if (msg.type() === 'error') pageErrors.push(msg.text()) })
    let navigations = 0
    page.on('framenavigated', () => { navigations++ })
    await page.goto(base)

    await page.locator(`#reservations tr[data-peer="${alice.peerId.toString()}"]`).waitFor({ timeout: 5000 })
    expect(await page.locator('#peer-id').textContent()).toBe(relay.peerId.toString())
    expect(await page.locator('#version').textContent()).toBe('molt 0.1.0')
    expect(await page.locator('#reservations-count').textContent()).toBe('1')
    expect(await page.locator('#addresses li').allTextContents()).toEqual([relayAddress()])
    // the reservation row: peer, the address it reserved from, expiry within the 2 h TTL
    const row = await page.locator(`#reservations tr[data-peer="${alice.peerId.toString()}"] td`).allTextContents()
    expect(row[1]).toMatch(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+$/)
    expect(row[2]).toMatch(/^in 1h 59m/)

    // identify's agent version is shown as text: the markup neither parses nor runs
    const peerRow = page.locator(`#peers tr[data-peer="${alice.peerId.toString()}"]`)
    await expect.poll(async () => peerRow.textContent(), { timeout: 5000 }).toContain(HOSTILE_AGENT)
    expect(await page.locator('img').count()).toBe(0)
    expect(await page.evaluate(() => (window as any).__pwned)).toBeUndefined()

    const uptime = await page.locator('#uptime').textContent()
    // hidden too: with no direct address on either side, bob's request below must go through the relay
    const bob = await agent('bob', { hidden: true })
    await page.locator(`#reservations tr[data-peer="${bob.peerId.toString()}"]`).waitFor({ timeout: 5000 })
    expect(await page.locator('#reservations-count').textContent()).toBe('2')
    await expect.poll(async () => page.locator('#uptime').textContent(), { timeout: 5000 }).not.toBe(uptime)
    // one navigation (the goto): everything since came from polling /api/status
    expect(navigations).toBe(1)
    expect(Number(await page.locator('body').getAttribute('data-updates'))).toBeGreaterThan(1)

    // a relayed connection shows up in the figures and the throughput chart
    const circuit = await eventually(() => alice.getMultiaddrs().map(String).find(a => a.includes('/p2p-circuit')), 10_000, 'alice\'s circuit address')
    const reply = await bob.request(circuit, { op: 'query', p: { domain: 'dashboard' } }, { timeout: 10_000 })
    expect(reply.op).toBe('respond')
    await expect.poll(async () => Number(await page.locator('#relayed-total').textContent()), { timeout: 5000 }).toBeGreaterThanOrEqual(1)
    // what the relay holds for the open circuit (bob's request went through it), none closed for memory
    await expect.poll(async () => page.locator('#held-bytes').textContent(), { timeout: 5000 }).toMatch(/^[1-9][\d.]* (B|KiB)$/)
    expect(await page.locator('#held-cut').textContent()).toBe('')
    await expect.poll(async () => Number(await page.locator('#chart').getAttribute('data-samples')), { timeout: 5000 }).toBeGreaterThan(2)
    expect(await page.locator('#chart polyline').count()).toBe(1)

    // refusals by reason, all four listed
    expect(await page.locator('#refused-reservations td.mono').allTextContents()).toEqual(['global-limit', 'per-ip-limit', 'bandwidth', 'shutting-down'])
    // the mailbox section follows whatever this relay runs
    const mailbox = await page.locator('#mailbox').textContent()
    if ((relay as { mailbox?: { stats?: unknown } }).mailbox?.stats != null) expect(mailbox).toContain('messages')
    else expect(mailbox).toBe('mailbox: not enabled')
    // and so does the trust section: relays run the gossip by default
    expect(await page.locator('#trust').textContent()).toContain('attestations')
    expect(pageErrors).toEqual([])
  })

  it('says so when the relay is gone, without losing what it showed', async () => {
    const address = base
    await server.close()
    await expect.poll(async () => page.locator('#state').textContent(), { timeout: 5000 }).toMatch(/^offline/)
    expect(await page.locator('#peer-id').textContent()).toBe(relay.peerId.toString())
    // back on the same port for afterAll's close()
    server = await startMetricsServer(createRelayMetrics(relay, { processMetrics: false }), Number(new URL(address).port), { routes: dashboard.handle })
    await expect.poll(async () => page.locator('#state').textContent(), { timeout: 5000 }).toMatch(/^live/)
  })
})

describe('dashboard pieces', () => {
  it('reads the mailbox defensively: absent, failing, malformed, empty, in use', async () => {
    const now = 10_000
    expect(await mailboxStatus({}, now)).toEqual({ enabled: false })
    expect(await mailboxStatus({ mailbox: null }, now)).toEqual({ enabled: false })
    expect(await mailboxStatus({ mailbox: { stats: () => { throw new Error('store closed') } } }, now)).toEqual({ enabled: true, error: 'store closed' })
    expect(await mailboxStatus({ mailbox: { stats: () => ({ messages: '3' }) } }, now)).toMatchObject({ enabled: true, error: expect.any(String) })
    expect(await mailboxStatus({ mailbox: { stats: () => ({ recipients: 0, messages: 0, bytes: 0, oldestAt: undefined }) } }, now))
      .toEqual({ enabled: true, recipients: 0, messages: 0, bytes: 0, oldestAt: null, oldestAgeMs: null })
    expect(await mailboxStatus({ mailbox: { stats: async () => ({ recipients: 2, messages: 5, bytes: 900, oldestAt: 4000 }) } }, now))
      .toEqual({ enabled: true, recipients: 2, messages: 5, bytes: 900, oldestAt: 4000, oldestAgeMs: 6000 })
  })

  it('keeps throughput samples in a ring, oldest first', () => {
    let total = 100
    let clock = 0
    const history = new ThroughputHistory(() => total, { intervalMs: 1000, capacity: 3, now: () => clock })
    for (const bytes of [10, 20, 30, 40]) {
      clock += 1000
      total += bytes
      history.sample()
    }
    expect(history.samples()).toEqual([[2000, 20], [3000, 30], [4000, 40]])
  })
})
