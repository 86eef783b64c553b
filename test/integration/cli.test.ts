import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { eventually as waitFor } from '../support/eventually.js'
import { chmod, readFile, stat, access, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { CliSandbox, type LocalAgent } from '../support/cli.js'

/*
 * `inbox --follow` and the agents whose start, signals or exit codes are
 * tested run as real processes. The agents other commands talk to run
 * `molt agent` through the CLI's main() in this process (sandbox.localAgent),
 * and commands that end by themselves go through it too (sandbox.call),
 * except where the exit code a script sees is the point (sandbox.run): a
 * process start costs ≈ 2 s of CPU, most of it loading libp2p.
 */

const sandbox = new CliSandbox()
/** Tests that start `molt` processes: a deadline for process starts on a busy machine, not a speed requirement */
const PROCESS_TEST_TIMEOUT = 90_000
/** answers query/task/tool with an echo */
let echo: LocalAgent
/** a plain agent whose API other commands go through */
let plain: LocalAgent
let echoAddress: string

beforeAll(async () => {
  const [echoDir, plainDir] = await Promise.all([sandbox.dir(), sandbox.dir()])
  ;[echo, plain] = await Promise.all([sandbox.localAgent(echoDir, ['--echo']), sandbox.localAgent(plainDir)])
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
    const inbox = await sandbox.call(['inbox', '--json', '--data-dir', dir])
    expect(inbox.code).toBe(0)
    expect(JSON.parse(inbox.stdout)).toEqual({ messages: [], next: 0 })
  }, PROCESS_TEST_TIMEOUT)
})

describe('molt send', () => {
  it('goes through the running agent\'s API and prints the reply', async () => {
    const { code, stdout, stderr } = await sandbox.call(['send', echoAddress, '--op', 'query', '--payload', QUERY, '--json', '--data-dir', plain.dataDir])
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
    const { code, stdout, stderr } = await sandbox.call(['send', echoAddress, '--op', 'query', '--payload', QUERY, '--json', '--data-dir', dir])
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
    const stream = await sandbox.call(['send', echoAddress, '--op', 'stream', '--payload', '{"action":"start","stream_id":"s1"}', '--json', '--data-dir', plain.dataDir])
    expect(stream.code).toBe(0)
    expect(JSON.parse(stream.stdout)).toMatchObject({ delivered: true, peer: echo.listening.peerId, route: 'direct', message: { op: 'stream' } })
    const noWait = await sandbox.call(['send', echo.listening.peerId, '--op', 'query', '--payload', QUERY, '--no-wait', '--data-dir', plain.dataDir])
    expect(noWait.code).toBe(0)
    expect(noWait.stdout).toMatch(/^delivered query [0-9a-f-]{36} to 12D3KooW\w+ \(direct\)/)
  })

  it('prints human-readable replies', async () => {
    const { code, stdout } = await sandbox.call(['send', echoAddress, '--op', 'tool', '--payload', '{"action":"list"}', '--data-dir', plain.dataDir])
    expect(code).toBe(0)
    expect(stdout).toMatch(/^respond from \S+@local re=[0-9a-f-]{36}/)
    expect(stdout).toContain('"echo"')
  })

  it('refuses bad arguments with exit 2', async () => {
    const badJson = await sandbox.call(['send', echoAddress, '--op', 'query', '--payload', '{nope', '--data-dir', plain.dataDir])
    expect(badJson.code).toBe(2)
    expect(badJson.stderr).toMatch(/^molt: --payload is not valid JSON/)
    const badJsonJson = await sandbox.call(['send', echoAddress, '--op', 'query', '--payload', '{nope', '--json', '--data-dir', plain.dataDir])
    expect(badJsonJson.code).toBe(2)
    expect(JSON.parse(badJsonJson.stdout).error.code).toBe('E_INVALID_PARAM')
    const noOp = await sandbox.call(['send', echoAddress, '--data-dir', plain.dataDir])
    expect(noOp.code).toBe(2)
    expect(noOp.stderr).toContain('--op')
    const badOp = await sandbox.call(['send', echoAddress, '--op', 'shout', '--data-dir', plain.dataDir])
    expect(badOp.code).toBe(2)
  })

  it('reports an invalid message or an unreachable peer on one line, exit 1', async () => {
    const invalid = await sandbox.call(['send', echoAddress, '--op', 'query', '--payload', '{}', '--json', '--data-dir', plain.dataDir])
    expect(invalid.code).toBe(1)
    expect(invalid.stderr).toMatch(/^molt: .*p\.domain.*\n$/)
    expect(JSON.parse(invalid.stdout)).toMatchObject({ error: { code: 'E_MISSING_FIELD' } })
    const unreachable = await sandbox.call(['send', `/ip4/127.0.0.1/tcp/1/p2p/${echo.listening.peerId}`, '--op', 'stream', '--payload', '{"action":"end","stream_id":"s"}', '--delivery', 'best-effort', '--data-dir', await sandbox.dir()])
    expect(unreachable.code).toBe(1)
    expect(unreachable.stderr).toMatch(/^molt: peer unreachable: .*\n$/)
  })

  it('queues an at-least-once message for an unreachable peer and lists it with molt outbox', async () => {
    const dir = await sandbox.dir()
    const queued = await sandbox.call(['send', `/ip4/127.0.0.1/tcp/1/p2p/${echo.listening.peerId}`, '--op', 'stream', '--payload', '{"action":"end","stream_id":"s"}', '--data-dir', dir])
    expect(queued.code).toBe(75)
    expect(queued.stdout).toMatch(/^queued stream [0-9a-f-]{36} to 12D3KooW\w+ in the outbox/)
    expect(queued.stderr).toContain('retried the next time `molt agent` runs')
    const listed = await sandbox.call(['outbox', '--json', '--data-dir', dir])
    expect(listed.code).toBe(0)
    const { pending } = JSON.parse(listed.stdout)
    expect(pending).toHaveLength(1)
    expect(pending[0]).toMatchObject({ peer: echo.listening.peerId, op: 'stream', mode: 'at-least-once' })
    const human = await sandbox.call(['outbox', '--data-dir', dir])
    expect(human.stdout).toContain(`stream to ${echo.listening.peerId}`)
    const badMode = await sandbox.call(['send', echoAddress, '--op', 'stream', '--delivery', 'twice', '--data-dir', dir])
    expect(badMode.code).toBe(2)
  })
})

describe('molt ping', () => {
  it('measures MoltSpeak round trips', async () => {
    const { code, stdout } = await sandbox.call(['ping', echoAddress, '--count', '3', '--interval', '20', '--json', '--data-dir', plain.dataDir])
    expect(code).toBe(0)
    const summary = JSON.parse(stdout)
    expect(summary).toMatchObject({ sent: 3, received: 3 })
    expect(summary.rttMs).toHaveLength(3)
    expect(summary.min).toBeGreaterThan(0)
  })

  it('prints one line per pong', async () => {
    const { code, stdout } = await sandbox.call(['ping', echoAddress, '--count', '2', '--interval', '0', '--data-dir', plain.dataDir])
    expect(code).toBe(0)
    expect(stdout).toMatch(/seq=1 rtt=[\d.]+ ms\n.*seq=2 rtt=[\d.]+ ms\n2\/2 pongs/)
  })
})

describe('molt inbox', () => {
  it('shows received messages through the agent\'s API', async () => {
    const sent = await sandbox.call(['send', echoAddress, '--op', 'query', '--payload', '{"domain":"inbox-test"}', '--json', '--data-dir', plain.dataDir])
    const queryId = JSON.parse(sent.stdout).re
    const { code, stdout } = await sandbox.call(['inbox', '--json', '--limit', '1000', '--data-dir', echo.dataDir])
    expect(code).toBe(0)
    const page = JSON.parse(stdout)
    const entry = page.messages.find((e: any) => e.message.id === queryId)
    expect(entry).toMatchObject({ peer: plain.listening.peerId, message: { op: 'query', p: { domain: 'inbox-test' } } })
    expect(page.next).toBe(page.messages.at(-1).cursor)
    const after = await sandbox.call(['inbox', '--json', '--after', String(page.next), '--data-dir', echo.dataDir])
    expect(JSON.parse(after.stdout)).toEqual({ messages: [], next: page.next })
  })

  it('--follow prints new messages as they arrive and stops on SIGINT', async () => {
    const start = JSON.parse((await sandbox.call(['inbox', '--json', '--limit', '1000', '--data-dir', echo.dataDir])).stdout).next
    const follow = await sandbox.start(['inbox', '--follow', '--json', '--after', String(start), '--data-dir', echo.dataDir])
    const sent = await sandbox.call(['send', echoAddress, '--op', 'stream', '--payload', '{"action":"start","stream_id":"follow"}', '--json', '--data-dir', plain.dataDir])
    const id = JSON.parse(sent.stdout).id
    const line = await follow.waitForJson(v => v.event === 'message' && v.message.id === id, 60_000)
    expect(line.cursor).toBeGreaterThan(start)
    expect(await follow.stop('SIGINT')).toEqual({ code: 0, signal: null })
  }, PROCESS_TEST_TIMEOUT)
})

describe('molt id and init', () => {
  it('id shows the identity and the running agent\'s addresses', async () => {
    const { code, stdout } = await sandbox.call(['id', '--json', '--data-dir', echo.dataDir])
    expect(code).toBe(0)
    const id = JSON.parse(stdout)
    expect(id).toMatchObject({ peerId: echo.listening.peerId, running: true, addresses: echo.listening.addresses })
    expect(id.did).toMatch(/^did:molt:key:z/)
    expect(id.key).toMatch(/^ed25519:[A-Za-z0-9+/]{43}=$/)
    expect(id.agent.org).toBe('local')
  })

  it('init creates an identity once and keeps it, updating only the given fields', async () => {
    const dir = await sandbox.dir()
    const first = await sandbox.call(['init', '--name', 'alice', '--org', 'acme', '--capability', 'weather.forecast', '--json', '--data-dir', dir])
    expect(first.code).toBe(0)
    const created = JSON.parse(first.stdout)
    expect(created).toMatchObject({ created: true, agent: { name: 'alice', org: 'acme', capabilities: ['weather.forecast'] } })
    const second = await sandbox.call(['init', '--description', 'forecasts', '--json', '--data-dir', dir])
    expect(second.code).toBe(0)
    const kept = JSON.parse(second.stdout)
    expect(kept).toMatchObject({ created: false, peerId: created.peerId, did: created.did, key: created.key })
    expect(kept.agent).toEqual({ name: 'alice', org: 'acme', description: 'forecasts', capabilities: ['weather.forecast'] })
    expect((await stat(join(dir, 'identity.key'))).mode & 0o777).toBe(0o600)
    const id = await sandbox.call(['id', '--data-dir', dir])
    expect(id.stdout).toContain(`PeerId  ${created.peerId as string}`)
    expect(id.stdout).toContain('alice@acme')
    expect(id.stdout).toContain('Not running')
  })

  it('init refuses an invalid name with exit 2', async () => {
    const { code, stderr } = await sandbox.call(['init', '--name', 'not ok', '--data-dir', await sandbox.dir()])
    expect(code).toBe(2)
    expect(stderr).toMatch(/^molt: --name must be/)
  })

  it('a key file readable by others stops id and agent, and is left as it was', async () => {
    const dir = await sandbox.dir()
    expect((await sandbox.call(['init', '--data-dir', dir])).code).toBe(0)
    const keyFile = join(dir, 'identity.key')
    await chmod(keyFile, 0o644)
    const before = await readFile(keyFile, 'utf8')
    // real processes (`molt agent` would run on in this one if it started), side by side
    const results = await Promise.all([['id'], ['agent', '--listen', '/ip4/127.0.0.1/tcp/0']].map(async args => sandbox.run([...args, '--data-dir', dir])))
    for (const { code, stdout, stderr } of results) {
      expect(code).toBe(1)
      expect(stdout).toBe('')
      expect(stderr).toMatch(/^molt: .*mode 644.*chmod 600.*\n$/)
      expect(stderr.trim().split('\n')).toHaveLength(1)
    }
    expect(await readFile(keyFile, 'utf8')).toBe(before)
    expect((await stat(keyFile)).mode & 0o777).toBe(0o644)
    await expect(access(join(dir, 'node.lock'))).rejects.toThrow()
  }, PROCESS_TEST_TIMEOUT)

  it('id without an identity says to run init', async () => {
    const { code, stderr } = await sandbox.call(['id', '--data-dir', await sandbox.dir()])
    expect(code).toBe(1)
    expect(stderr).toContain('molt init')
  })
})

/** (check, what, timeout) order kept for this file's call sites */
const eventually = async <T>(check: () => Promise<T | undefined>, what: string, timeout = 45_000): Promise<T> => waitFor(check, timeout, what)

describe('molt find, card and peers', () => {
  /** offers cli.translate; every other agent here is told about it with --bootstrap only */
  let carol: LocalAgent
  /** started with --bootstrap <carol> */
  let dave: LocalAgent

  beforeAll(async () => {
    const carolDir = await sandbox.dir()
    const init = await sandbox.call(['init', '--name', 'carol', '--org', 'acme', '--capability', 'cli.translate', '--data-dir', carolDir])
    expect(init.code).toBe(0)
    carol = await sandbox.localAgent(carolDir, ['--echo'])
    dave = await sandbox.localAgent(await sandbox.dir(), ['--bootstrap', carol.listening.addresses[0]])
    expect(dave.listening).toMatchObject({ mdns: false, bootstrap: [carol.listening.addresses[0]] })
    // dave connects to carol on his own and fetches her card
    await eventually(async () => {
      const { stdout } = await sandbox.call(['peers', '--json', '--data-dir', dave.dataDir])
      const peers = JSON.parse(stdout)
      return peers.some((p: any) => p.peerId === carol.listening.peerId && p.name === 'carol') ? true : undefined
    }, 'dave to know carol')
  })

  it('the sandbox never lets an agent run mDNS outside a namespace', () => {
    for (const agent of [echo, plain, carol, dave]) expect(agent.listening.mdns).toBe(false)
  })

  it('peers --json lists known agents with status, last seen and card data', async () => {
    const { code, stdout, stderr } = await sandbox.call(['peers', '--json', '--data-dir', dave.dataDir])
    expect(stderr).toBe('')
    expect(code).toBe(0)
    expect(stdout.trim().split('\n')).toHaveLength(1)
    const peers = JSON.parse(stdout)
    expect(Array.isArray(peers)).toBe(true)
    const entry = peers.find((p: any) => p.peerId === carol.listening.peerId)
    expect(entry).toMatchObject({ status: 'connected', route: 'direct', name: 'carol', org: 'acme', capabilities: ['cli.translate'] })
    expect(entry.lastSeen).toBeGreaterThan(Date.now() - 60_000)
    expect(entry.addresses).toContain(carol.listening.addresses[0])
  })

  it('peers prints a table for people', async () => {
    const { code, stdout } = await sandbox.call(['peers', '--data-dir', dave.dataDir])
    expect(code).toBe(0)
    const [header, ...rows] = stdout.trim().split('\n')
    expect(header).toMatch(/^STATUS\s+ROLE\s+LAST SEEN\s+ROUTE\s+AGENT\s+RTT\s+PEER$/)
    expect(rows.find(r => r.endsWith(carol.listening.peerId))).toMatch(/^connected\s+agent\s+now\s+direct\s+carol@acme\s/)
  })

  it('peers without a running agent prints an empty list', async () => {
    const dir = await sandbox.dir()
    expect((await sandbox.call(['init', '--data-dir', dir])).code).toBe(0)
    const json = await sandbox.call(['peers', '--json', '--data-dir', dir])
    expect(json.code).toBe(0)
    expect(JSON.parse(json.stdout)).toEqual([])
    const text = await sandbox.call(['peers', '--data-dir', dir])
    expect(text.stdout).toBe('')
    expect(text.stderr).toMatch(/no known agents/)
  })

  it('find --json prints an array of matching agents', async () => {
    const { code, stdout, stderr } = await sandbox.call(['find', 'cli.translate', '--json', '--limit', '5', '--timeout', '10000', '--data-dir', dave.dataDir])
    expect(stderr).toBe('')
    expect(code).toBe(0)
    const agents = JSON.parse(stdout)
    expect(agents).toHaveLength(1)
    expect(agents[0]).toMatchObject({
      peerId: carol.listening.peerId,
      name: 'carol',
      org: 'acme',
      capabilities: ['cli.translate'],
      addresses: carol.listening.addresses,
      source: 'local',
      card: { peer_id: carol.listening.peerId }
    })
    const none = await sandbox.call(['find', 'cli.nobody', '--json', '--data-dir', dave.dataDir])
    expect(none.code).toBe(0)
    expect(JSON.parse(none.stdout)).toEqual([])
  })

  it('find prints one line per agent and its addresses', async () => {
    const { code, stdout } = await sandbox.call(['find', 'cli.translate', '--data-dir', dave.dataDir])
    expect(code).toBe(0)
    expect(stdout).toBe(`${carol.listening.peerId}  carol@acme  [cli.translate]  (local)\n  ${carol.listening.addresses[0]}\n`)
    const none = await sandbox.call(['find', 'cli.nobody', '--data-dir', dave.dataDir])
    expect(none.stderr).toBe('no agent offering cli.nobody found\n')
  })

  it('find from a short-lived node reaches agents through config.json bootstrap peers', async () => {
    const dir = await sandbox.dir()
    await writeFile(join(dir, 'config.json'), JSON.stringify({ discovery: { bootstrap: [carol.listening.addresses[0]] } }), { mode: 0o600 })
    const { code, stdout, stderr } = await sandbox.call(['find', 'cli.translate', '--json', '--timeout', '10000', '--data-dir', dir])
    expect(stderr).toBe('')
    expect(code).toBe(0)
    const agents = JSON.parse(stdout)
    // `local` when the card of the connected bootstrap peer came in first, else `dht` (its provider record)
    expect(agents).toEqual([expect.objectContaining({ peerId: carol.listening.peerId, name: 'carol', card: expect.objectContaining({ peer_id: carol.listening.peerId }) })])
    expect(['local', 'dht']).toContain(agents[0].source)
    await expect(access(join(dir, 'node.lock'))).rejects.toThrow()
  })

  it('card --json prints a peer\'s verified card, or the own one', async () => {
    const peer = await sandbox.call(['card', carol.listening.peerId, '--json', '--data-dir', dave.dataDir])
    expect(peer.code).toBe(0)
    const card = JSON.parse(peer.stdout)
    expect(card).toMatchObject({ v: 1, peer_id: carol.listening.peerId, name: 'carol', org: 'acme', capabilities: [{ name: 'cli.translate' }] })
    expect(card.sig).toMatch(/^ed25519:/)
    const byAddress = await sandbox.call(['card', echoAddress, '--refresh', '--json', '--data-dir', dave.dataDir])
    expect(byAddress.code).toBe(0)
    expect(JSON.parse(byAddress.stdout).peer_id).toBe(echo.listening.peerId)
    const own = await sandbox.call(['card', '--json', '--data-dir', dave.dataDir])
    expect(JSON.parse(own.stdout)).toMatchObject({ peer_id: dave.listening.peerId, addresses: dave.listening.addresses })
    // without a running agent: a short-lived node signs the data dir's card
    const dir = await sandbox.dir()
    const created = JSON.parse((await sandbox.call(['init', '--name', 'erin', '--capability', 'cli.offline', '--json', '--data-dir', dir])).stdout)
    const offline = await sandbox.call(['card', '--json', '--data-dir', dir])
    expect(offline.code).toBe(0)
    expect(JSON.parse(offline.stdout)).toMatchObject({ peer_id: created.peerId, name: 'erin', capabilities: [{ name: 'cli.offline' }] })
  })

  it('card prints the card for people', async () => {
    const { code, stdout } = await sandbox.call(['card', carol.listening.peerId, '--data-dir', dave.dataDir])
    expect(code).toBe(0)
    expect(stdout).toMatch(/^Agent +carol@acme\nPeerId +12D3KooW/)
    expect(stdout).toContain('Offers    cli.translate')
    expect(stdout).toContain('Signature verified')
    expect(stdout).toContain(`  ${carol.listening.addresses[0]}`)
  })

  it('card of an unreachable peer fails with exit 1 on one line', async () => {
    const { code, stdout, stderr } = await sandbox.call(['card', `/ip4/127.0.0.1/tcp/1/p2p/${carol.listening.peerId}`, '--refresh', '--json', '--data-dir', await sandbox.dir()])
    expect(code).toBe(1)
    expect(stderr).toMatch(/^molt: peer unreachable: .*\n$/)
    expect(JSON.parse(stdout).error.code).toBe('E_INTERNAL')
  })

  it('refuses bad arguments with exit 2', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['find'], /needs <capability>/],
      [['find', 'a', 'b'], /unexpected argument "b"/],
      [['find', 'a', '--limit', '0'], /--limit must be/],
      [['find', 'x'.repeat(129)], /<capability> must be 1-128 characters/],
      [['card', 'not-a-peer'], /<peer> "not-a-peer" is neither a PeerId/],
      [['card', '--refresh'], /--refresh needs a <peer>/],
      [['peers', 'extra'], /unexpected argument "extra"/],
      [['agent', '--bootstrap', '/ip4/127.0.0.1/tcp/4001'], /--bootstrap \/ip4\/127\.0\.0\.1\/tcp\/4001 must end in \/p2p\/<PeerId>/],
      [['agent', '--bootstrap', 'nope'], /--bootstrap nope is not a multiaddr/]
    ]
    for (const [args, message] of cases) {
      const { code, stderr } = await sandbox.call([...args, '--data-dir', await sandbox.dir()])
      expect({ args, code }).toEqual({ args, code: 2 })
      expect(stderr).toMatch(message)
    }
  })
})

describe('help and usage errors', () => {
  const flags: Record<string, string[]> = {
    init: ['--name', '--org', '--description', '--capability'],
    id: [],
    agent: ['--listen', '--api-port', '--echo', '--no-mdns', '--bootstrap'],
    send: ['--op', '--payload', '--cls', '--re', '--sign', '--no-wait', '--timeout'],
    ping: ['--count', '--timeout'],
    inbox: ['--after', '--limit', '--follow'],
    find: ['--limit', '--timeout'],
    card: ['--refresh', '--timeout'],
    peers: []
  }

  it('molt --help lists every command', async () => {
    const { code, stdout } = await sandbox.call(['--help'])
    expect(code).toBe(0)
    for (const command of Object.keys(flags)) expect(stdout).toMatch(new RegExp(`^  ${command} `, 'm'))
  })

  it('every command\'s --help exits 0 and names all its flags', async () => {
    await Promise.all(Object.entries(flags).map(async ([command, own]) => {
      for (const help of ['--help', '-h']) {
        const { code, stdout, stderr } = await sandbox.call([command, help])
        expect({ command, code, stderr }).toEqual({ command, code: 0, stderr: '' })
        expect(stdout).toContain(`Usage: molt ${command}`)
        for (const flag of [...own, '--data-dir', '--json', '--help']) expect(stdout).toContain(flag)
      }
    }))
  })

  it('an unknown command or flag exits 2 with a message on stderr', async () => {
    // real processes, side by side: the exit code a script sees
    const [command, flag] = await Promise.all([sandbox.run(['frobnicate']), sandbox.run(['inbox', '--frobnicate'])])
    expect(command.code).toBe(2)
    expect(command.stderr).toMatch(/^molt: unknown command "frobnicate"/)
    expect(flag.code).toBe(2)
    expect(flag.stderr).toMatch(/^molt: Unknown option '--frobnicate'/)
  }, PROCESS_TEST_TIMEOUT)
})
