import { describe, it, expect, afterAll, afterEach } from 'vitest'
import { eventually } from '../support/eventually.js'
import { ECHO, echoClient } from '../support/echo-client.js'
import { mkdtemp, readFile, rm, access, writeFile } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Libp2p } from 'libp2p'
import type { Connection } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { createRelayNode, fetchRelayInfo, ipKey, BandwidthMeter, resolveRelayLimits, openFileLimit, openFilesNeeded, RELAY_LIMIT_BOUNDS, type RelayNode, type RelayNodeOptions } from '../../src/relay/index.js'
import { OPEN_FILES_HEADROOM } from '../../src/relay/constants.js'
import { parseConfig } from '../../src/config/index.js'
import { CliSandbox } from '../support/cli.js'
import { startTestRelay, relayAddress } from '../support/relays.js'

const KiB = 1024
const MiB = 1024 * KiB

const dirs: string[] = []
const relays: RelayNode[] = []
const clients: Libp2p[] = []

afterEach(async () => {
  await Promise.allSettled(clients.splice(0).map(async c => c.stop()))
  await Promise.allSettled(relays.splice(0).map(async r => r.stop({ drainMs: 0 })))
})

afterAll(async () => {
  await Promise.all(dirs.map(async dir => rm(dir, { recursive: true, force: true })))
})

async function tempDir (): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'molt-relay-test-'))
  dirs.push(dir)
  return dir
}

async function startRelay (options: RelayNodeOptions = {}): Promise<RelayNode> {
  return startTestRelay(tempDir, relays, options)
}


/** A stock libp2p echo node (test/support/echo-client.ts); with `relay`, it reserves there. Stopped after each test */
async function startClient (relay?: string): Promise<Libp2p> {
  const node = await echoClient(relay)
  clients.push(node)
  return node
}

/** Try to reserve on `relay`: the client, or the reason the relay gave */
async function tryReserve (relay: string): Promise<{ client?: Libp2p, error?: Error }> {
  try {
    return { client: await startClient(relay) }
  } catch (err: any) {
    return { error: err }
  }
}

const circuitAddress = (client: Libp2p): string | undefined =>
  client.getMultiaddrs().map(String).find(a => a.includes('/p2p-circuit/'))


/** Dial `target` through the relay: a relayed ("limited") connection */
async function dialRelayed (from: Libp2p, relay: string, target: Libp2p): Promise<Connection> {
  return from.dial(multiaddr(`${relay}/p2p-circuit/p2p/${target.peerId.toString()}`))
}

/** Send `bytes` over a new echo stream on `connection`, close it for writing, read everything back */
async function echo (connection: Connection, bytes: number): Promise<number> {
  const stream = await connection.newStream(ECHO, { runOnLimitedConnection: true })
  let received = 0
  const reading = (async () => {
    for await (const chunk of stream) received += chunk.byteLength
  })()
  const data = randomBytes(bytes)
  for (let offset = 0; offset < bytes; offset += 64 * KiB) {
    if (!stream.send(data.subarray(offset, offset + 64 * KiB))) await stream.onDrain()
  }
  await stream.close()
  await reading
  return received
}

describe('molt relay server', () => {
  it('gives a client a reservation and a /p2p-circuit address, and serves its policy', async () => {
    const relay = await startRelay()
    const address = relayAddress(relay)
    expect(address).toMatch(new RegExp(`^/ip4/127\\.0\\.0\\.1/tcp/\\d+/p2p/${relay.peerId.toString()}$`))
    const client = await startClient(address)
    const circuit = await eventually(() => circuitAddress(client), 10_000, 'a circuit address')
    expect(circuit).toBe(`${address}/p2p-circuit/p2p/${client.peerId.toString()}`)
    expect(relay.stats()).toMatchObject({ reservations: 1, reservationsRefused: { 'global-limit': 0, 'per-ip-limit': 0, bandwidth: 0, 'shutting-down': 0 } })
    // the relay's Noise is molt's (one write(2) per Noise message, src/transport/noise.ts): it forwards each frame twice
    const encrypters = [...(relay.libp2p as any).components.upgrader.connectionEncrypters.values()]
    expect(encrypters.map(e => e[Symbol.toStringTag])).toEqual(['molt/noise'])

    // molt's limits, not the stock 15 reservations / 128 KiB / 2 min
    const info = await fetchRelayInfo(client, relay.peerId)
    expect(info).toMatchObject({
      v: 1,
      peerId: relay.peerId.toString(),
      limits: {
        maxReservations: 1024,
        maxReservationsPerIp: 16,
        reservationTtlMs: 2 * 3600_000,
        connectionDataLimitBytes: 64 * MiB,
        connectionDurationLimitMs: 30 * 60_000,
        connectionDataLimitCountsBothDirections: true,
        bandwidthBytesPerSecond: 8 * MiB
      },
      load: { reservations: 1, overBudget: false, shuttingDown: false }
    })
  })

  it('refuses the reservation beyond the global cap (global-limit) and frees the slot on disconnect', async () => {
    const relay = await startRelay({ maxReservations: 2 })
    const address = relayAddress(relay)
    await startClient(address)
    const second = await startClient(address)
    expect(relay.stats().reservations).toBe(2)
    const third = await tryReserve(address)
    expect(third.error?.message).toContain('PERMISSION_DENIED')
    expect(relay.stats().reservationsRefused['global-limit']).toBe(1)
    expect(relay.stats().reservations).toBe(2)

    // a holder going away releases its slot at once, not after the 2 h TTL
    await second.stop()
    await eventually(() => relay.stats().reservations === 1, 5000, 'the slot to be released')
    const fourth = await tryReserve(address)
    expect(fourth.error).toBeUndefined()
    expect(relay.stats()).toMatchObject({ reservations: 2, reservationsRefused: { 'global-limit': 1 } })
  })

  it('refuses the reservation beyond the per-IP cap (per-ip-limit)', async () => {
    const relay = await startRelay({ maxReservationsPerIp: 1 })
    const address = relayAddress(relay)
    const first = await startClient(address)
    expect(circuitAddress(first)).toBeDefined()
    const second = await tryReserve(address)
    expect(second.error?.message).toContain('PERMISSION_DENIED')
    expect(relay.stats().reservationsRefused).toMatchObject({ 'per-ip-limit': 1, 'global-limit': 0 })
    expect(relay.stats().reservations).toBe(1)
  })

  it('carries far more than the stock 128 KiB over one relayed connection', async () => {
    const relay = await startRelay()
    const address = relayAddress(relay)
    const target = await startClient(address)
    const dialer = await startClient()
    const connection = await dialRelayed(dialer, address, target)
    expect(connection.limits).toBeDefined() // it is a relayed ("limited") connection
    expect(await echo(connection, 2 * MiB)).toBe(2 * MiB)
    // still usable after 4 MiB went through the relay
    expect(await echo(connection, 256 * KiB)).toBe(256 * KiB)
    expect(connection.status).toBe('open')
    const stats = relay.stats()
    expect(stats.relayedConnections).toBe(1)
    expect(stats.relayedConnectionsTotal).toBe(1)
    expect(stats.relayedBytes).toBeGreaterThan(4.5 * MiB)
  })

  it('holds what diallers sent on open circuits (an upstream buffer) under maxHeldHopBytes: the circuit holding most is closed', async () => {
    const relay = await startRelay({ maxHeldHopBytes: 1 * MiB })
    const address = relayAddress(relay)
    const target = await startClient(address)
    const small = await dialRelayed(await startClient(), address, target)
    expect(await echo(small, 256 * KiB)).toBe(256 * KiB)
    // the stock relay keeps every byte the dialler sent until the circuit closes: counted as held
    expect(relay.stats().heldBytes).toBeGreaterThanOrEqual(256 * KiB)

    const large = await dialRelayed(await startClient(), address, target)
    // cut part-way: the echo ends early (or fails)
    expect(await echo(large, 2 * MiB).catch(() => -1)).toBeLessThan(2 * MiB)
    await eventually(() => large.status !== 'open', 5000, 'the largest circuit to be closed')
    const stats = relay.stats()
    expect(stats.relayedConnectionsCut).toBe(1)
    expect(stats.heldBytes).toBeLessThanOrEqual(1 * MiB)
    // the smaller circuit is untouched
    expect(small.status).toBe('open')
    expect(await echo(small, 64 * KiB)).toBe(64 * KiB)
    // closing a circuit releases what was held for it
    await small.close()
    await eventually(() => relay.stats().heldBytes === 0, 5000, 'held bytes released')
  })

  it('applies molt\'s duration limit (3 s here): data flows before, the connection is closed after', async () => {
    const relay = await startRelay({ connectionDurationLimitMs: 3000 })
    const address = relayAddress(relay)
    const target = await startClient(address)
    const dialer = await startClient()
    const opened = Date.now()
    const connection = await dialRelayed(dialer, address, target)
    expect(await echo(connection, 512 * KiB)).toBe(512 * KiB)
    await eventually(() => connection.status !== 'open', 30_000, 'the relayed connection to close') // 'aborted' by the relay
    // not before the limit (how long after it depends on how busy the machine is)
    expect(Date.now() - opened).toBeGreaterThanOrEqual(2500)
    await eventually(() => relay.stats().relayedConnections === 0, 3000, 'the circuit to be counted closed')
    // the reservation itself is untouched: a new relayed connection works
    const again = await dialRelayed(dialer, address, target)
    expect(await echo(again, 64 * KiB)).toBe(64 * KiB)
  })

  it('refuses new reservations and relayed connections while over the bandwidth budget', async () => {
    const relay = await startRelay({ bandwidthBytesPerSecond: 64 * KiB, bandwidthWindowMs: 2000 })
    const address = relayAddress(relay)
    const target = await startClient(address)
    const dialer = await startClient()
    const connection = await dialRelayed(dialer, address, target)
    expect(await echo(connection, 512 * KiB)).toBe(512 * KiB) // open circuits are not cut
    expect(relay.info().load.overBudget).toBe(true)

    const refused = await tryReserve(address)
    expect(refused.error?.message).toContain('PERMISSION_DENIED')
    expect(relay.stats().reservationsRefused.bandwidth).toBe(1)

    const other = await startClient()
    await expect(dialRelayed(other, address, target)).rejects.toThrow()
    expect(relay.stats().relayedConnectionsRefused.bandwidth).toBe(1)

    // once the window has passed, the relay accepts again
    await eventually(() => !relay.info().load.overBudget, 5000, 'the budget to recover')
    expect((await tryReserve(address)).error).toBeUndefined()
  })

  it('shuts down gracefully: refuses new reservations (shutting-down), drains relayed connections, releases the data dir', async () => {
    const dataDir = await tempDir()
    const relay = await startRelay({ dataDir })
    await access(join(dataDir, 'node.lock'))
    const address = relayAddress(relay)
    const target = await startClient(address)
    const dialer = await startClient()
    const connection = await dialRelayed(dialer, address, target)
    expect(await echo(connection, 64 * KiB)).toBe(64 * KiB)

    let stopped = false
    // a drain far longer than the test's timeout: stop() must end because the last relayed connection closed, not because the drain ran out
    const stopping = relay.stop({ drainMs: 3_600_000 }).then(() => { stopped = true })
    const late = await tryReserve(address)
    expect(late.error?.message).toContain('PERMISSION_DENIED')
    expect(relay.stats()).toMatchObject({ shuttingDown: true, reservationsRefused: { 'shutting-down': 1 } })
    // the open relayed connection keeps working while the relay drains
    expect(await echo(connection, 64 * KiB)).toBe(64 * KiB)
    expect(stopped).toBe(false)

    await connection.close()
    await stopping
    await expect(access(join(dataDir, 'node.lock'))).rejects.toThrow()
  })

  it('shares the data dir lock with agents: one data dir, one running node', async () => {
    const dataDir = await tempDir()
    const relay = await startRelay({ dataDir })
    await expect(createRelayNode({ dataDir, listen: ['/ip4/127.0.0.1/tcp/0'] })).rejects.toMatchObject({ name: 'NodeLockedError' })
    // the same identity every time
    await relay.stop({ drainMs: 0 })
    const again = await startRelay({ dataDir })
    expect(again.peerId.equals(relay.peerId)).toBe(true)
  })
})

describe('relay limits and config', () => {
  it('config.json relay section: validated field by field', () => {
    expect(parseConfig({ relay: { maxReservations: 10, listen: ['/ip4/0.0.0.0/tcp/4001'] } }).relay).toEqual({ maxReservations: 10, listen: ['/ip4/0.0.0.0/tcp/4001'] })
    expect(parseConfig({}).relay).toBeUndefined()
    expect(() => parseConfig({ relay: { maxReservations: 0 } })).toThrow(/relay\.maxReservations/)
    expect(() => parseConfig({ relay: { connectionDurationLimitMs: 1.5 } })).toThrow(/relay\.connectionDurationLimitMs/)
    expect(() => parseConfig({ relay: { bandwidthBytesPerSecond: '8M' } })).toThrow(/relay\.bandwidthBytesPerSecond/)
    expect(() => parseConfig({ relay: { listen: 'x' } })).toThrow(/relay\.listen/)
    expect(() => parseConfig({ relay: [] })).toThrow(/relay must be an object/)
  })

  it('options fill defaults and name the bad option', () => {
    expect(resolveRelayLimits({ maxReservations: 10 })).toMatchObject({ maxReservations: 10, maxConnections: 276, maxReservationsPerIp: 16 })
    expect(() => resolveRelayLimits({ maxReservationsPerIp: -1 })).toThrow(expect.objectContaining({ name: 'InvalidRelayOptionError', option: 'maxReservationsPerIp' }))
  })

  it('refuses to start with more maxReservations than the process may open sockets for (RelayOpenFilesError names the knobs)', async () => {
    const limit = await openFileLimit()
    // where /proc/self/limits is missing or the limit is above what maxReservations accepts, nothing to refuse
    if (limit === undefined || limit - OPEN_FILES_HEADROOM + 1 > RELAY_LIMIT_BOUNDS.maxReservations.max) return
    const maxReservations = limit - OPEN_FILES_HEADROOM + 1
    await expect(createRelayNode({ dataDir: await tempDir(), listen: ['/ip4/127.0.0.1/tcp/0'], maxReservations }))
      .rejects.toThrow(expect.objectContaining({ name: 'RelayOpenFilesError', needed: openFilesNeeded(maxReservations), limit, message: expect.stringMatching(/ulimit -n .*LimitNOFILE=.*relay\.maxReservations/) }))
    // one fewer fits: the relay starts and advertises it
    const relay = await startRelay({ maxReservations: maxReservations - 1 })
    expect(relay.limits.maxReservations).toBe(maxReservations - 1)
  })

  it('reads the open-file limit from /proc/self/limits', async () => {
    const dir = await tempDir()
    const file = join(dir, 'limits')
    await writeFile(file, 'Limit                     Soft Limit           Hard Limit           Units\nMax open files            4096                 524288               files\n')
    expect(await openFileLimit(file)).toBe(4096)
    await writeFile(file, 'Max open files            unlimited            unlimited            files\n')
    expect(await openFileLimit(file)).toBeUndefined()
    expect(await openFileLimit(join(dir, 'missing'))).toBeUndefined()
  })

  it('per-IP keys: the IPv4 address, an IPv6 /64', () => {
    expect(ipKey(multiaddr('/ip4/192.0.2.7/tcp/4001'))).toBe('192.0.2.7')
    expect(ipKey(multiaddr('/ip6/2001:db8:1:2:3:4:5:6/tcp/1'))).toBe('2001:db8:1:2::/64')
    expect(ipKey(multiaddr('/ip6/2001:db8::1/tcp/1'))).toBe('2001:db8:0:0::/64')
    expect(ipKey(multiaddr('/ip6/::ffff:192.0.2.7/tcp/1'))).toBe('192.0.2.7')
    expect(ipKey(multiaddr('/dns4/example.com/tcp/1'))).toBe('unknown')
  })

  it('measures bandwidth over a sliding window', () => {
    let now = 0
    const meter = new BandwidthMeter(10_000, 10, () => now)
    meter.record(50_000)
    expect(meter.rate()).toBe(5000)
    now = 9_999
    meter.record(10_000)
    expect(meter.rate()).toBe(6000)
    now = 10_500 // the first second left the window
    expect(meter.rate()).toBe(1000)
    now = 30_000
    expect(meter.rate()).toBe(0)
    expect(meter.total).toBe(60_000)
  })
})

describe('molt relay (CLI)', () => {
  const sandbox = new CliSandbox()
  afterAll(async () => { await sandbox.cleanup() })

  // commands that end by themselves go through the CLI's main() in this process (a process start is ≈ 2 s of
  // CPU); the relay that runs and stops on SIGTERM is a real process
  it('--help lists the relay flags', async () => {
    const { code, stdout } = await sandbox.call(['relay', '--help'])
    expect(code).toBe(0)
    for (const flag of ['--listen', '--max-reservations', '--max-reservations-per-ip', '--reservation-ttl', '--connection-data-limit', '--connection-duration-limit', '--bandwidth', '--bootstrap', '--init', '--json', '--data-dir']) {
      expect(stdout).toContain(flag)
    }
  })

  it('--init --json creates the identity and a config.json relay section with the defaults', async () => {
    const dir = await sandbox.dir()
    const { code, stdout, stderr } = await sandbox.call(['relay', '--init', '--json', '--data-dir', dir, '--max-reservations-per-ip', '4'])
    expect(stderr).toBe('')
    expect(code).toBe(0)
    const result = JSON.parse(stdout)
    const relay = {
      listen: ['/ip4/0.0.0.0/tcp/4001', '/ip4/0.0.0.0/tcp/4002/ws'],
      maxReservations: 1024,
      maxReservationsPerIp: 4,
      reservationTtlMs: 7_200_000,
      connectionDataLimitBytes: 67_108_864,
      connectionDurationLimitMs: 1_800_000,
      bandwidthBytesPerSecond: 8_388_608,
      drainTimeoutMs: 5000
    }
    expect(result).toMatchObject({ peerId: expect.stringMatching(/^12D3KooW/), created: true, relay })
    const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'))
    expect(config.relay).toEqual(relay)

    const bad = await sandbox.call(['relay', '--init', '--json', '--data-dir', dir, '--max-reservations', '0'])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toContain('--max-reservations')
  })

  it('runs a relay a client reserves on, prints stats, and exits 0 on SIGTERM', async () => {
    const dir = await sandbox.dir()
    const cli = await sandbox.start(['relay', '--listen', '/ip4/127.0.0.1/tcp/0', '--json', '--data-dir', dir, '--stats-interval', '300'])
    const listening = JSON.parse(await cli.nextLine())
    expect(listening).toMatchObject({
      event: 'listening',
      peerId: expect.stringMatching(/^12D3KooW/),
      limits: { maxReservations: 1024, connectionDataLimitBytes: 64 * MiB, connectionDurationLimitMs: 1_800_000 }
    })
    const address = listening.addresses[0] as string
    expect(address).toMatch(new RegExp(`^/ip4/127\\.0\\.0\\.1/tcp/\\d+/p2p/${listening.peerId as string}$`))

    const client = await startClient(address)
    expect(await eventually(() => circuitAddress(client))).toContain(`${address}/p2p-circuit/p2p/`)
    await cli.waitForJson(v => v.event === 'stats' && v.reservations === 1)

    expect(await cli.stop('SIGTERM')).toEqual({ code: 0, signal: null })
    const stopped = await cli.waitForJson(v => v.event === 'stopped')
    expect(stopped).toMatchObject({ shuttingDown: true })
    await expect(access(join(dir, 'node.lock'))).rejects.toThrow()
  })
})
