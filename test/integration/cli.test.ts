import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { chmod, readFile, stat, access } from 'node:fs/promises'
import { join } from 'node:path'
import { CliSandbox, type RunningAgent } from '../helpers/cli.js'

const sandbox = new CliSandbox()
/** answers query/task/tool with an echo */
let echo: RunningAgent
/** a plain agent whose API other commands go through */
let plain: RunningAgent
let echoAddress: string

beforeAll(async () => {
  const [echoDir, plainDir] = await Promise.all([sandbox.dir(), sandbox.dir()])
  ;[echo, plain] = await Promise.all([sandbox.agent(echoDir, ['--echo']), sandbox.agent(plainDir)])
  echoAddress = echo.listening.addresses[0]
})

afterAll(async () => {
  await sandbox.cleanup()
})

const QUERY = '{"domain":"weather","intent":"forecast"}'

describe('molt agent', () => {
  it('prints one JSON listening line with /p2p/ addresses and the API port', () => {
    expect(echo.listening.peerId).toMatch(/^12D3KooW/)
    expect(echo.listening.apiPort).toBeGreaterThan(0)
    expect(echo.listening.addresses.length).toBeGreaterThan(0)
    for (const address of echo.listening.addresses) {
      expect(address).toMatch(new RegExp(`^/ip4/127\\.0\\.0\\.1/tcp/\\d+/p2p/${echo.listening.peerId}$`))
    }
  })

  it('SIGTERM stops it with exit 0 and releases the lock', async () => {
    const dir = await sandbox.dir()
    const agent = await sandbox.agent(dir)
    await access(join(dir, 'node.lock'))
    expect(await agent.stop('SIGTERM')).toEqual({ code: 0, signal: null })
    await expect(access(join(dir, 'node.lock'))).rejects.toThrow()
    await expect(access(join(dir, 'api.json'))).rejects.toThrow()
    // the data dir is free again: a short-lived node can open it
    const inbox = await sandbox.run(['inbox', '--json', '--data-dir', dir])
    expect(inbox.code).toBe(0)
    expect(JSON.parse(inbox.stdout)).toEqual({ messages: [], next: 0 })
  })
})

describe('molt send', () => {
  it('goes through the running agent\'s API and prints the reply', async () => {
    const { code, stdout, stderr } = await sandbox.run(['send', echoAddress, '--op', 'query', '--payload', QUERY, '--json', '--data-dir', plain.dataDir])
    expect(stderr).toBe('')
    expect(code).toBe(0)
    expect(stdout.trim().split('\n')).toHaveLength(1)
    const reply = JSON.parse(stdout)
    expect(reply).toMatchObject({ v: '0.1', op: 'respond', p: { status: 'success', data: { echo: JSON.parse(QUERY) } } })
    expect(reply.from.key).toMatch(/^ed25519:/)
    // the query left from the running agent (it holds the key), and its reply reached that agent
    const received = await plain.waitForJson(v => v.event === 'message' && v.message.id === reply.id)
    expect(received.peer).toBe(echo.listening.peerId)
    const query = await echo.waitForJson(v => v.event === 'message' && v.message.id === reply.re)
    expect(query).toMatchObject({ peer: plain.listening.peerId, message: { op: 'query', p: JSON.parse(QUERY) } })
  })

  it('starts a short-lived node when no agent runs for the data dir', async () => {
    const dir = await sandbox.dir()
    const { code, stdout, stderr } = await sandbox.run(['send', echoAddress, '--op', 'query', '--payload', QUERY, '--json', '--data-dir', dir])
    expect(stderr).toBe('')
    expect(code).toBe(0)
    const reply = JSON.parse(stdout)
    expect(reply.op).toBe('respond')
    expect(reply.p.data.echo).toEqual(JSON.parse(QUERY))
    const query = await echo.waitForJson(v => v.event === 'message' && v.message.id === reply.re)
    expect(query.message.op).toBe('query')
    // the short-lived node stopped and let go of the data dir
    await expect(access(join(dir, 'node.lock'))).rejects.toThrow()
  })

  it('prints the delivery result for ops without a reply, and with --no-wait', async () => {
    const stream = await sandbox.run(['send', echoAddress, '--op', 'stream', '--payload', '{"action":"start","stream_id":"s1"}', '--json', '--data-dir', plain.dataDir])
    expect(stream.code).toBe(0)
    expect(JSON.parse(stream.stdout)).toMatchObject({ delivered: true, peer: echo.listening.peerId, route: 'direct', message: { op: 'stream' } })
    const noWait = await sandbox.run(['send', echo.listening.peerId, '--op', 'query', '--payload', QUERY, '--no-wait', '--data-dir', plain.dataDir])
    expect(noWait.code).toBe(0)
    expect(noWait.stdout).toMatch(/^delivered query [0-9a-f-]{36} to 12D3KooW\w+ \(direct\)/)
  })

  it('prints human-readable replies', async () => {
    const { code, stdout } = await sandbox.run(['send', echoAddress, '--op', 'tool', '--payload', '{"action":"list"}', '--data-dir', plain.dataDir])
    expect(code).toBe(0)
    expect(stdout).toMatch(/^respond from \S+@local re=[0-9a-f-]{36}/)
    expect(stdout).toContain('"echo"')
  })

  it('refuses bad arguments with exit 2', async () => {
    const badJson = await sandbox.run(['send', echoAddress, '--op', 'query', '--payload', '{nope', '--data-dir', plain.dataDir])
    expect(badJson.code).toBe(2)
    expect(badJson.stderr).toMatch(/^molt: --payload is not valid JSON/)
    const badJsonJson = await sandbox.run(['send', echoAddress, '--op', 'query', '--payload', '{nope', '--json', '--data-dir', plain.dataDir])
    expect(badJsonJson.code).toBe(2)
    expect(JSON.parse(badJsonJson.stdout).error.code).toBe('E_INVALID_PARAM')
    const noOp = await sandbox.run(['send', echoAddress, '--data-dir', plain.dataDir])
    expect(noOp.code).toBe(2)
    expect(noOp.stderr).toContain('--op')
    const badOp = await sandbox.run(['send', echoAddress, '--op', 'shout', '--data-dir', plain.dataDir])
    expect(badOp.code).toBe(2)
  })

  it('reports an invalid message or an unreachable peer on one line, exit 1', async () => {
    const invalid = await sandbox.run(['send', echoAddress, '--op', 'query', '--payload', '{}', '--json', '--data-dir', plain.dataDir])
    expect(invalid.code).toBe(1)
    expect(invalid.stderr).toMatch(/^molt: .*p\.domain.*\n$/)
    expect(JSON.parse(invalid.stdout)).toMatchObject({ error: { code: 'E_MISSING_FIELD' } })
    const unreachable = await sandbox.run(['send', `/ip4/127.0.0.1/tcp/1/p2p/${echo.listening.peerId}`, '--op', 'stream', '--payload', '{"action":"end","stream_id":"s"}', '--data-dir', await sandbox.dir()])
    expect(unreachable.code).toBe(1)
    expect(unreachable.stderr).toMatch(/^molt: peer unreachable: .*\n$/)
  })
})

describe('molt ping', () => {
  it('measures MoltSpeak round trips', async () => {
    const { code, stdout } = await sandbox.run(['ping', echoAddress, '--count', '3', '--interval', '20', '--json', '--data-dir', plain.dataDir])
    expect(code).toBe(0)
    const summary = JSON.parse(stdout)
    expect(summary).toMatchObject({ sent: 3, received: 3 })
    expect(summary.rttMs).toHaveLength(3)
    expect(summary.min).toBeGreaterThan(0)
  })

  it('prints one line per pong', async () => {
    const { code, stdout } = await sandbox.run(['ping', echoAddress, '--count', '2', '--interval', '0', '--data-dir', plain.dataDir])
    expect(code).toBe(0)
    expect(stdout).toMatch(/seq=1 rtt=[\d.]+ ms\n.*seq=2 rtt=[\d.]+ ms\n2\/2 pongs/)
  })
})

describe('molt inbox', () => {
  it('shows received messages through the agent\'s API', async () => {
    const sent = await sandbox.run(['send', echoAddress, '--op', 'query', '--payload', '{"domain":"inbox-test"}', '--json', '--data-dir', plain.dataDir])
    const queryId = JSON.parse(sent.stdout).re
    const { code, stdout } = await sandbox.run(['inbox', '--json', '--limit', '1000', '--data-dir', echo.dataDir])
    expect(code).toBe(0)
    const page = JSON.parse(stdout)
    const entry = page.messages.find((e: any) => e.message.id === queryId)
    expect(entry).toMatchObject({ peer: plain.listening.peerId, message: { op: 'query', p: { domain: 'inbox-test' } } })
    expect(page.next).toBe(page.messages.at(-1).cursor)
    const after = await sandbox.run(['inbox', '--json', '--after', String(page.next), '--data-dir', echo.dataDir])
    expect(JSON.parse(after.stdout)).toEqual({ messages: [], next: page.next })
  })

  it('--follow prints new messages as they arrive and stops on SIGINT', async () => {
    const start = JSON.parse((await sandbox.run(['inbox', '--json', '--limit', '1000', '--data-dir', echo.dataDir])).stdout).next
    const follow = await sandbox.start(['inbox', '--follow', '--json', '--after', String(start), '--data-dir', echo.dataDir])
    const sent = await sandbox.run(['send', echoAddress, '--op', 'stream', '--payload', '{"action":"start","stream_id":"follow"}', '--json', '--data-dir', plain.dataDir])
    const id = JSON.parse(sent.stdout).id
    const line = await follow.waitForJson(v => v.event === 'message' && v.message.id === id)
    expect(line.cursor).toBeGreaterThan(start)
    expect(await follow.stop('SIGINT')).toEqual({ code: 0, signal: null })
  })
})

describe('molt id and init', () => {
  it('id shows the identity and the running agent\'s addresses', async () => {
    const { code, stdout } = await sandbox.run(['id', '--json', '--data-dir', echo.dataDir])
    expect(code).toBe(0)
    const id = JSON.parse(stdout)
    expect(id).toMatchObject({ peerId: echo.listening.peerId, running: true, addresses: echo.listening.addresses })
    expect(id.did).toMatch(/^did:molt:key:z/)
    expect(id.key).toMatch(/^ed25519:[A-Za-z0-9+/]{43}=$/)
    expect(id.agent.org).toBe('local')
  })

  it('init creates an identity once and keeps it, updating only the given fields', async () => {
    const dir = await sandbox.dir()
    const first = await sandbox.run(['init', '--name', 'alice', '--org', 'acme', '--capability', 'weather.forecast', '--json', '--data-dir', dir])
    expect(first.code).toBe(0)
    const created = JSON.parse(first.stdout)
    expect(created).toMatchObject({ created: true, agent: { name: 'alice', org: 'acme', capabilities: ['weather.forecast'] } })
    const second = await sandbox.run(['init', '--description', 'forecasts', '--json', '--data-dir', dir])
    expect(second.code).toBe(0)
    const kept = JSON.parse(second.stdout)
    expect(kept).toMatchObject({ created: false, peerId: created.peerId, did: created.did, key: created.key })
    expect(kept.agent).toEqual({ name: 'alice', org: 'acme', description: 'forecasts', capabilities: ['weather.forecast'] })
    expect((await stat(join(dir, 'identity.key'))).mode & 0o777).toBe(0o600)
    const id = await sandbox.run(['id', '--data-dir', dir])
    expect(id.stdout).toContain(`PeerId  ${created.peerId as string}`)
    expect(id.stdout).toContain('alice@acme')
    expect(id.stdout).toContain('Not running')
  })

  it('init refuses an invalid name with exit 2', async () => {
    const { code, stderr } = await sandbox.run(['init', '--name', 'not ok', '--data-dir', await sandbox.dir()])
    expect(code).toBe(2)
    expect(stderr).toMatch(/^molt: --name must be/)
  })

  it('a key file readable by others stops id and agent, and is left as it was', async () => {
    const dir = await sandbox.dir()
    expect((await sandbox.run(['init', '--data-dir', dir])).code).toBe(0)
    const keyFile = join(dir, 'identity.key')
    await chmod(keyFile, 0o644)
    const before = await readFile(keyFile, 'utf8')
    for (const args of [['id'], ['agent', '--listen', '/ip4/127.0.0.1/tcp/0']]) {
      const { code, stdout, stderr } = await sandbox.run([...args, '--data-dir', dir])
      expect(code).toBe(1)
      expect(stdout).toBe('')
      expect(stderr).toMatch(/^molt: .*mode 644.*chmod 600.*\n$/)
      expect(stderr.trim().split('\n')).toHaveLength(1)
    }
    expect(await readFile(keyFile, 'utf8')).toBe(before)
    expect((await stat(keyFile)).mode & 0o777).toBe(0o644)
    await expect(access(join(dir, 'node.lock'))).rejects.toThrow()
  })

  it('id without an identity says to run init', async () => {
    const { code, stderr } = await sandbox.run(['id', '--data-dir', await sandbox.dir()])
    expect(code).toBe(1)
    expect(stderr).toContain('molt init')
  })
})

describe('help and usage errors', () => {
  const flags: Record<string, string[]> = {
    init: ['--name', '--org', '--description', '--capability'],
    id: [],
    agent: ['--listen', '--api-port', '--echo'],
    send: ['--op', '--payload', '--cls', '--re', '--sign', '--no-wait', '--timeout'],
    ping: ['--count', '--timeout'],
    inbox: ['--after', '--limit', '--follow']
  }

  it('molt --help lists every command', async () => {
    const { code, stdout } = await sandbox.run(['--help'])
    expect(code).toBe(0)
    for (const command of Object.keys(flags)) expect(stdout).toMatch(new RegExp(`^  ${command} `, 'm'))
  })

  it('every command\'s --help exits 0 and names all its flags', async () => {
    await Promise.all(Object.entries(flags).map(async ([command, own]) => {
      for (const help of ['--help', '-h']) {
        const { code, stdout, stderr } = await sandbox.run([command, help])
        expect({ command, code, stderr }).toEqual({ command, code: 0, stderr: '' })
        expect(stdout).toContain(`Usage: molt ${command}`)
        for (const flag of [...own, '--data-dir', '--json', '--help']) expect(stdout).toContain(flag)
      }
    }))
  })

  it('an unknown command or flag exits 2 with a message on stderr', async () => {
    const command = await sandbox.run(['frobnicate'])
    expect(command.code).toBe(2)
    expect(command.stderr).toMatch(/^molt: unknown command "frobnicate"/)
    const flag = await sandbox.run(['inbox', '--frobnicate'])
    expect(flag.code).toBe(2)
    expect(flag.stderr).toMatch(/^molt: Unknown option '--frobnicate'/)
  })
})
