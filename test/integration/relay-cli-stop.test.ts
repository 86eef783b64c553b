import { describe, it, expect, afterAll, afterEach } from 'vitest'
import { spawn, spawnSync } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Libp2p } from 'libp2p'
import type { Connection } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { CLI, CliSandbox, RunningCli, type LineReader } from '../support/cli.js'
import { eventually } from '../support/eventually.js'
import { ECHO, echoClient } from '../support/echo-client.js'
import { DRAIN_TIMEOUT, openFilesNeeded } from '../../src/relay/index.js'
import { MAX_RESERVATIONS, OPEN_FILES_BESIDE_CONNECTIONS } from '../../src/relay/constants.js'
import { parseConfig } from '../../src/config/index.js'

const sandbox = new CliSandbox()
const clients: Libp2p[] = []
const spawned: RunningCli[] = []

afterEach(async () => {
  await Promise.allSettled(clients.splice(0).map(async c => c.stop()))
})

afterAll(async () => {
  for (const cli of spawned) if (cli.child.exitCode === null) cli.child.kill('SIGKILL')
  await sandbox.cleanup()
})

/** A stock libp2p echo node (test/support/echo-client.ts); with `relay`, it reserves there. Stopped after each test */
async function client (relay?: string): Promise<Libp2p> {
  const node = await echoClient(relay)
  clients.push(node)
  return node
}

/** One echo round trip over `connection` */
async function echo (connection: Connection): Promise<string> {
  const stream = await connection.newStream(ECHO, { runOnLimitedConnection: true })
  stream.send(new TextEncoder().encode('ping'))
  await stream.close()
  let text = ''
  for await (const chunk of stream) text += new TextDecoder().decode(chunk.subarray())
  return text
}

/** `molt relay --log-format json` in this process (stop() interrupts it as SIGTERM does), its listening line, and a relayed connection through it */
async function relayWithCircuit (flags: string[], dataDir?: string): Promise<{ cli: LineReader & { stop: () => Promise<unknown> }, listening: any, connection: Connection }> {
  const dir = dataDir ?? await sandbox.dir()
  const cli = await sandbox.startLocal(['relay', '--data-dir', dir, '--listen', '/ip4/127.0.0.1/tcp/0', '--log-format', 'json', '--stats-interval', '0', ...flags])
  const listening = await cli.waitForJson(v => v.msg === 'listening', 60_000)
  const relay = listening.addresses[0] as string
  const target = await client(relay)
  await eventually(() => target.getMultiaddrs().some(a => a.toString().includes('/p2p-circuit')), 20_000, 'a reservation')
  const dialer = await client()
  const connection = await dialer.dial(multiaddr(`${relay}/p2p-circuit/p2p/${target.peerId.toString()}`))
  expect(await echo(connection)).toBe('ping')
  return { cli, listening, connection }
}

describe('molt relay --drain-timeout', () => {
  it('is documented in --help, and a bad value is a usage error (exit 2)', async () => {
    const help = await sandbox.call(['relay', '--help'])
    expect(help.code).toBe(0)
    expect(help.stdout).toMatch(/--drain-timeout <ms>.*0 = stop at once/)
    expect(help.stdout).toContain('relay.drainTimeoutMs')
    for (const bad of ['-1', 'soon', '3600001']) {
      const result = await sandbox.call(['relay', '--drain-timeout', bad, '--data-dir', await sandbox.dir()])
      expect(result.code, bad).toBe(2)
      expect(result.stderr).toContain('drain-timeout')
    }
    // config.json relay.drainTimeoutMs: checked like the flag
    expect(parseConfig({ relay: { drainTimeoutMs: 0 } }).relay).toEqual({ drainTimeoutMs: 0 })
    for (const bad of [-1, 1.5, '5s', 3_600_001]) expect(() => parseConfig({ relay: { drainTimeoutMs: bad } }), String(bad)).toThrow(/relay\.drainTimeoutMs must be a whole number of ms between 0 and 3600000/)
  })

  it('0 stops at once: the relay exits while a relayed connection is still open, and closes it', async () => {
    const { cli, connection } = await relayWithCircuit(['--drain-timeout', '0'])
    const exit = await cli.stop()
    expect(exit).toMatchObject({ code: 0 })
    expect(await cli.waitForJson(v => v.msg === 'stopping')).toMatchObject({ drainMs: 0, relayedConnections: 1 })
    // we never closed it: the relay stopped without waiting for it
    await eventually(() => connection.status === 'closed', 20_000, 'the relay to close the circuit')
  })

  it('a short drain from config.json relay.drainTimeoutMs ends by itself while the circuit stays open', async () => {
    const dir = await sandbox.dir()
    await writeFile(join(dir, 'config.json'), JSON.stringify({ relay: { drainTimeoutMs: 200 } }))
    const { cli, connection } = await relayWithCircuit([], dir)
    const exit = await cli.stop()
    expect(exit).toMatchObject({ code: 0 })
    expect(await cli.waitForJson(v => v.msg === 'stopping')).toMatchObject({ drainMs: 200, relayedConnections: 1 })
    await eventually(() => connection.status === 'closed', 20_000, 'the relay to close the circuit')
  })

  it('a long drain waits for the relayed connection, which keeps working until it closes (the knob is what ends the others)', async () => {
    const { cli, connection } = await relayWithCircuit(['--drain-timeout', '3600000'])
    let exited = false
    const exit = cli.stop().then((e) => { exited = true; return e })
    await cli.waitForJson(v => v.msg === 'stopping', 20_000)
    expect(await echo(connection)).toBe('ping')
    expect(exited).toBe(false)
    await connection.close()
    expect(await exit).toMatchObject({ code: 0 })
  })

  it('--init writes the default drain into config.json, or the flag\'s', async () => {
    const dir = await sandbox.dir()
    const init = await sandbox.call(['relay', '--init', '--json', '--data-dir', dir])
    expect(JSON.parse(init.stdout).relay.drainTimeoutMs).toBe(DRAIN_TIMEOUT)
    const again = await sandbox.call(['relay', '--init', '--json', '--drain-timeout', '250', '--data-dir', dir])
    expect(JSON.parse(again.stdout).relay.drainTimeoutMs).toBe(250)
  })
})

/** `molt relay` spawned with an open-file limit of `limit` (soft and hard, so Node cannot raise it) */
function relayUnderLimit (limit: number, dir: string, extra: string[]): RunningCli {
  const child = spawn('/bin/sh', ['-c', `ulimit -n ${limit} && exec "$0" "$@"`, process.execPath, CLI, 'relay', '--data-dir', dir, '--listen', '/ip4/127.0.0.1/tcp/0', '--stats-interval', '0', '--drain-timeout', '0', ...extra], {
    env: { ...process.env, MOLT_HOME: dir, DEBUG: '' }, stdio: ['ignore', 'pipe', 'pipe']
  })
  const cli = new RunningCli(child)
  spawned.push(cli)
  return cli
}

describe('molt relay under a low open-file limit', () => {
  it('caps the default reservations (limit − 256) and warns after the listening line; refuses a --max-reservations that cannot fit', async () => {
    // lowering both limits to 1,024 needs a hard limit of at least that (any usual box: systemd's is 524,288)
    const hard = spawnSync('/bin/sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).stdout.trim()
    expect(hard === 'unlimited' || Number(hard) >= 1024, `hard open-file limit ${hard}`).toBe(true)
    const dir = await sandbox.dir()
    const capped = relayUnderLimit(1024, dir, ['--json'])
    const listening = await capped.waitForJson(v => v.event === 'listening', 60_000)
    // maxConnections (2 × 768 + 256 derived) stays under the limit: the connection manager prunes before EMFILE
    expect(listening.limits).toMatchObject({ maxReservations: 768, maxConnections: 1024 - OPEN_FILES_BESIDE_CONNECTIONS })
    const warning = await capped.waitForJson(v => v.event === 'open-files', 20_000)
    expect(warning).toMatchObject({ limit: 1024, maxReservations: 768, wanted: 1024, message: expect.stringMatching(/ulimit -n 1280.*LimitNOFILE=1280/) })
    // the listening line stays the first one
    expect(JSON.parse(capped.lines[0]).event).toBe('listening')
    expect(await capped.stop()).toMatchObject({ code: 0 })

    const refused = relayUnderLimit(1024, dir, ['--max-reservations', '1024'])
    expect(await refused.exited).toMatchObject({ code: 1 })
    expect(refused.stderr).toMatch(/maxReservations 1024 needs 1280 open files, but this process may open 1024.*ulimit -n 1280/)
  })
})

describe('deploy/molt-relay.service', () => {
  it('lets the default relay open its files and drain before systemd kills it', async () => {
    const unit = await readFile(new URL('../../deploy/molt-relay.service', import.meta.url), 'utf8')
    const setting = (name: string): string | undefined => unit.match(new RegExp(`^${name}=(.+)$`, 'm'))?.[1]
    expect(Number(setting('LimitNOFILE'))).toBeGreaterThanOrEqual(openFilesNeeded(MAX_RESERVATIONS))
    expect(Number(setting('TimeoutStopSec')?.replace(/s$/, '')) * 1000).toBeGreaterThan(DRAIN_TIMEOUT)
  })
})
