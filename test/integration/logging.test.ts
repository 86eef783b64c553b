import { describe, it, expect, afterAll, afterEach } from 'vitest'
import { spawn } from 'node:child_process'
import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { CLI, CliSandbox, RunningCli, type LineReader } from '../support/cli.js'
import { eventually } from '../support/eventually.js'

const sandbox = new CliSandbox()
const clients: Libp2p[] = []

afterEach(async () => {
  await Promise.allSettled(clients.splice(0).map(async c => c.stop()))
})

afterAll(async () => {
  await sandbox.cleanup()
})

const LEVELS = ['error', 'warn', 'info', 'debug']

interface LogLine { ts: string, level: string, msg: string, [field: string]: unknown }

/** Every stdout line, each of which must be a JSON log line */
function logLines (cli: LineReader): LogLine[] {
  return cli.lines.map((line) => {
    const value = JSON.parse(line)
    expect(value, line).toMatchObject({ ts: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/), msg: expect.any(String) })
    expect(LEVELS, line).toContain(value.level)
    // ts, level, msg lead
    expect(Object.keys(value).slice(0, 3)).toEqual(['ts', 'level', 'msg'])
    return value
  })
}

/** `molt relay` on loopback with `extra` flags (and `env`), spawned directly so DEBUG survives */
async function startRelay (extra: string[], env: NodeJS.ProcessEnv = {}): Promise<RunningCli> {
  const dir = await sandbox.dir()
  const childEnv: NodeJS.ProcessEnv = { ...process.env, MOLT_HOME: dir, ...env }
  if (env.DEBUG === undefined) delete childEnv.DEBUG
  const child = spawn(process.execPath, [CLI, 'relay', '--data-dir', dir, '--listen', '/ip4/127.0.0.1/tcp/0', '--stats-interval', '300', ...extra], {
    env: childEnv, stdio: ['ignore', 'pipe', 'pipe']
  })
  const cli = new RunningCli(child)
  running.push(cli)
  return cli
}
const running: RunningCli[] = []
afterAll(() => { for (const cli of running) cli.child.kill('SIGKILL') })

/** A plain libp2p node that reserves a slot on the relay (listens on <relay>/p2p-circuit) */
async function reserveOn (relayAddress: string): Promise<Libp2p> {
  const node = await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0', `${relayAddress}/p2p-circuit`] },
    transports: [tcp(), circuitRelayTransport()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify() }
  })
  clients.push(node)
  return node
}

describe('molt relay --log-format json', () => {
  it('prints only JSON log lines on stdout, with debug activity, while DEBUG= output stays on stderr', async () => {
    const cli = await startRelay(['--log-format', 'json', '--log-level', 'debug', '--metrics-port', '0'], { DEBUG: 'molt:relay' })
    const listening = await cli.waitForJson<LogLine>(v => v.msg === 'listening', 20_000)
    expect(listening.level).toBe('info')
    expect(listening.dashboard).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/)
    const address = (listening.addresses as string[])[0]
    expect(address).toMatch(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/12D3KooW/)

    const client = await reserveOn(address)
    const peer = client.peerId.toString()
    await cli.waitForJson(v => v.msg === 'peer:connect' && v.peer === peer, 10_000)
    const added = await cli.waitForJson<LogLine>(v => v.msg === 'reservation:add' && v.peer === peer, 10_000)
    expect(added).toMatchObject({ level: 'debug', address: expect.stringMatching(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+/), expiresAt: expect.any(Number) })
    await cli.waitForJson(v => v.msg === 'stats' && v.reservations === 1, 10_000)

    await client.stop()
    await cli.waitForJson(v => v.msg === 'peer:disconnect' && v.peer === peer, 10_000)
    await cli.waitForJson(v => v.msg === 'reservation:remove' && v.peer === peer, 10_000)

    expect(await cli.stop('SIGTERM')).toEqual({ code: 0, signal: null })
    const lines = logLines(cli)
    expect(lines.map(l => l.msg)).toEqual(expect.arrayContaining(['listening', 'stats', 'stopping', 'stopped']))
    expect(lines.at(-1)).toMatchObject({ level: 'info', msg: 'stopped', shuttingDown: true })
    // libp2p's debug namespaces still work, on their own stream
    expect(cli.stderr).toContain('molt:relay')
  })

  it('--log-level info leaves the debug activity out', async () => {
    const cli = await startRelay(['--log-format', 'json', '--log-level', 'info'])
    const listening = await cli.waitForJson<LogLine>(v => v.msg === 'listening', 20_000)
    const client = await reserveOn((listening.addresses as string[])[0])
    await cli.waitForJson(v => v.msg === 'stats' && v.reservations === 1, 10_000)
    // a stats line after the reservation: the activity watcher (1 s) has had its look
    const seen = cli.lines.length
    await eventually(() => cli.lines.length > seen + 4, 10_000, 'more stats lines')
    expect(client.getMultiaddrs().some(ma => ma.toString().includes('/p2p-circuit'))).toBe(true)
    expect(await cli.stop('SIGTERM')).toEqual({ code: 0, signal: null })
    const lines = logLines(cli)
    expect(lines.filter(l => l.level === 'debug')).toEqual([])
    expect(new Set(lines.map(l => l.msg))).toEqual(new Set(['listening', 'stats', 'stopping', 'stopped']))
  })

  it('takes MOLT_LOG_FORMAT / MOLT_LOG_LEVEL; flags win over them', async () => {
    // two relays side by side
    const [env, flag] = await Promise.all([
      startRelay([], { MOLT_LOG_FORMAT: 'json', MOLT_LOG_LEVEL: 'debug' }),
      startRelay(['--log-format', 'pretty'], { MOLT_LOG_FORMAT: 'json' })
    ])
    expect((await env.waitForJson<LogLine>(v => v.msg === 'listening', 20_000)).level).toBe('info')
    expect(await env.stop('SIGTERM')).toEqual({ code: 0, signal: null })
    logLines(env)

    await eventually(() => flag.lines.includes('molt relay'), 20_000, 'the pretty listening lines')
    expect(await flag.stop('SIGTERM')).toEqual({ code: 0, signal: null })
    expect(flag.lines.some(line => line.startsWith('{'))).toBe(false)
  })
})

describe('molt agent --log-format json', () => {
  it('logs a received message by id and sender, never its payload or keys', async () => {
    const [agentDir, senderDir] = await Promise.all([sandbox.dir(), sandbox.dir()])
    // `molt agent` through the CLI's main() in this process: its stdout lines are what is tested
    const agent = await sandbox.startLocal(['agent', '--data-dir', agentDir, '--listen', '/ip4/127.0.0.1/tcp/0', '--log-format', 'json', '--log-level', 'debug'])
    // a deadline for a start on a loaded machine (the CLI's modules load here first), not a speed requirement
    const listening = await agent.waitForJson<LogLine>(v => v.msg === 'listening', 60_000)
    const address = (listening.addresses as string[])[0]
    const marker = 'PAYLOAD-MUST-NOT-BE-LOGGED'
    const sent = await sandbox.call(['send', address, '--op', 'hello', '--payload', JSON.stringify({ capabilities: [], note: marker }), '--sign', '--no-wait', '--json', '--data-dir', senderDir])
    expect(sent.code, sent.stderr).toBe(0)
    const { id } = JSON.parse(sent.stdout)
    const line = await agent.waitForJson<LogLine>(v => v.msg === 'message' && v.id === id, 10_000)
    expect(line).toMatchObject({ level: 'info', op: 'hello', signed: true, route: 'direct', peer: expect.stringMatching(/^12D3KooW/) })
    await agent.waitForJson(v => v.msg === 'peer:connect' && v.peer === line.peer && v.level === 'debug', 10_000)
    expect(await agent.stop('SIGTERM')).toEqual({ code: 0, signal: null })
    logLines(agent)
    const stdout = agent.lines.join('\n')
    expect(stdout).not.toContain(marker)
    expect(stdout).not.toMatch(/ed25519:/)
    expect(stdout).not.toMatch(/"(p|sig|key)":/)
  })
})

describe('log flags on the command line', () => {
  it('a bad --log-level or --log-format exits 2 naming the flag; a bad MOLT_LOG_LEVEL exits 1', async () => {
    // real processes (a relay or agent that started anyway would run on in this one), side by side
    const [level, format, cli] = await Promise.all([
      sandbox.run(['relay', '--log-level', 'loud', '--listen', '/ip4/127.0.0.1/tcp/0']),
      sandbox.run(['agent', '--log-format', 'xml', '--listen', '/ip4/127.0.0.1/tcp/0']),
      startRelay([], { MOLT_LOG_LEVEL: 'chatty' })
    ])
    expect(level.code).toBe(2)
    expect(level.stderr).toContain('--log-level must be one of error, warn, info, debug, got "loud"')
    expect(format.code).toBe(2)
    expect(format.stderr).toContain('--log-format must be one of json, pretty')
    expect(await cli.exited).toEqual({ code: 1, signal: null })
    expect(cli.stderr).toContain('MOLT_LOG_LEVEL')
    expect(cli.stderr).toContain('log.level')
  })

  it('agent and relay --help document both flags', async () => {
    for (const command of ['agent', 'relay']) {
      const { code, stdout } = await sandbox.call([command, '--help'])
      expect(code).toBe(0)
      expect(stdout).toContain('--log-level <level>')
      expect(stdout).toContain('--log-format <format>')
    }
  })
})
