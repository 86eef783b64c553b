import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { eventually } from '../support/eventually.js'
import { CliSandbox, type AnyAgent, type CliResult, type Listening, type LocalAgent, type RunningAgent } from '../support/cli.js'

/**
 * What a newcomer meets following the README (issue #23): a query to a bare
 * agent, pings in the inbox, `molt peers`, a closed stdout, read-only
 * commands on a machine with no agent. The relay and the agent whose stdout
 * closes are real `molt` processes; the other agents run `molt agent`
 * through the CLI's main() in this process (what they print and answer is
 * tested, not their process), as the commands do. All on loopback.
 */
const sandbox = new CliSandbox()
/** Each test runs several `molt` processes; on a loaded machine one takes seconds to start */
const SLOW = 180_000
/** `molt agent` as `npm start` runs it: no --echo, no API client */
let bare: LocalAgent
/** a second agent whose API the commands below go through */
let asker: LocalAgent
/** an agent of its own for the /v1/stream test: a stream client that left still counts for 30 s (it may be reconnecting) */
let served: LocalAgent
/** started with --keep-unhandled */
let quiet: LocalAgent
/** started with --show-housekeeping */
let shown: LocalAgent

beforeAll(async () => {
  // the file's shared agents start here, side by side: each spends most of its start waiting on disk
  const dirs = await Promise.all(Array.from({ length: 5 }, async () => sandbox.dir()))
  ;[bare, asker, served, quiet, shown] = await Promise.all([
    sandbox.localAgent(dirs[0]), sandbox.localAgent(dirs[1]), sandbox.localAgent(dirs[2]),
    sandbox.localAgent(dirs[3], ['--keep-unhandled']), sandbox.localAgent(dirs[4], ['--show-housekeeping'])
  ])
}, SLOW)

afterAll(async () => {
  await sandbox.cleanup()
})

/** A real `molt agent --json` process on loopback, once it printed its listening line (room for a loaded machine) */
async function startAgent (dataDir: string, extra: string[] = []): Promise<RunningAgent> {
  const cli = await sandbox.start(['agent', '--data-dir', dataDir, '--listen', '/ip4/127.0.0.1/tcp/0', '--json', ...extra])
  const listening: Listening = JSON.parse(await cli.nextLine(90_000))
  expect(listening.event).toBe('listening')
  return Object.assign(cli, { listening, dataDir })
}

/** `molt <args>` to completion, with room for a loaded machine */
async function molt (args: string[]): Promise<CliResult> {
  return sandbox.call(args, 90_000)
}

async function apiToken (agent: AnyAgent): Promise<string> {
  return (await readFile(join(agent.dataDir, 'api-token'), 'utf8')).trim()
}

describe('a request to a bare agent', () => {
  it('is answered at once with E_CAPABILITY_UNKNOWN naming the op, and kept in its inbox', async () => {
    const { code, stdout, stderr } = await molt(['send', bare.listening.addresses[0], '--op', 'query', '--payload', '{"domain":"weather"}', '--timeout', '10000', '--json', '--data-dir', asker.dataDir])
    expect(stderr).toBe('')
    // exit 1: the reply is an `error`
    expect(code).toBe(1)
    const reply = JSON.parse(stdout)
    expect(reply).toMatchObject({ op: 'error', p: { code: 'E_CAPABILITY_UNKNOWN', field: 'op', context: { op: 'query' } } })
    expect(reply.p.message).toMatch(/nothing on this agent answers "query"/)
    const inbox = JSON.parse((await molt(['inbox', '--json', '--data-dir', bare.dataDir])).stdout)
    expect(inbox.messages.find((e: any) => e.message.id === reply.re)).toMatchObject({ message: { op: 'query', p: { domain: 'weather' } } })
  }, SLOW)

  // this test and the next wait out their --timeout (nothing answers): side by side (different agents), the waits overlap
  it.concurrent('waits for an API client subscribed to /v1/stream; the timeout then says the peer acknowledged but nothing answered', async () => {
    const controller = new AbortController()
    try {
      const res = await fetch(`http://127.0.0.1:${served.listening.apiPort}/v1/stream`, { headers: { authorization: `Bearer ${await apiToken(served)}` }, signal: controller.signal })
      expect(res.status).toBe(200)
      const { code, stderr } = await molt(['send', served.listening.addresses[0], '--op', 'task', '--payload', '{"action":"create","task_id":"t1"}', '--timeout', '5000', '--data-dir', asker.dataDir])
      expect(code).toBe(1)
      expect(stderr).toMatch(/no reply to task .* within 5000 ms: the peer acknowledged it but sent no reply \(nothing there answers "task"/)
      expect(stderr).toContain('molt send --no-wait')
    } finally {
      controller.abort()
    }
  }, SLOW)

  it.concurrent('--keep-unhandled keeps the old silence', async () => {
    const { code, stderr } = await molt(['send', quiet.listening.addresses[0], '--op', 'query', '--payload', '{"domain":"weather"}', '--timeout', '5000', '--data-dir', asker.dataDir])
    expect(code).toBe(1)
    expect(stderr).toMatch(/within 5000 ms: the peer acknowledged it/)
  }, SLOW)

  it('a message answering another (with re) is not refused: no error ping-pong between bare agents', async () => {
    const answer = JSON.parse((await molt(['send', bare.listening.addresses[0], '--op', 'query', '--payload', '{"domain":"weather"}', '--re', 'some-earlier-id', '--no-wait', '--json', '--data-dir', asker.dataDir])).stdout)
    expect(answer.status).toBe('delivered')
    // a refused request after it: its error comes back after any error about the first
    const refused = JSON.parse((await molt(['send', bare.listening.addresses[0], '--op', 'query', '--payload', '{"domain":"weather"}', '--json', '--data-dir', asker.dataDir])).stdout)
    expect(refused).toMatchObject({ op: 'error', p: { code: 'E_CAPABILITY_UNKNOWN' } })
    const inbox = JSON.parse((await molt(['inbox', '--json', '--limit', '1000', '--data-dir', asker.dataDir])).stdout)
    const errors = inbox.messages.filter((e: any) => e.message.op === 'error').map((e: any) => e.message.re)
    expect(errors).toContain(refused.re)
    expect(errors).not.toContain(answer.id)
  }, SLOW)
})

describe('ping/pong housekeeping', () => {
  it('is answered but neither stored in the inbox nor printed by the agent', async () => {
    const ping = await molt(['ping', bare.listening.addresses[0], '--count', '2', '--interval', '0', '--json', '--data-dir', asker.dataDir])
    expect(ping.code).toBe(0)
    // a marker after the pings: once the agent printed it, it would have printed the pings before it
    const marker = await molt(['send', bare.listening.addresses[0], '--op', 'stream', '--payload', '{"action":"start","stream_id":"after-pings"}', '--json', '--data-dir', asker.dataDir])
    expect(marker.code).toBe(0)
    await bare.waitForJson(v => v.event === 'message' && v.message.p?.stream_id === 'after-pings')
    const printed = bare.lines.map(line => JSON.parse(line)).filter(v => v.event === 'message')
    expect(printed.filter(v => v.message.op === 'ping' || v.message.op === 'pong')).toEqual([])
    for (const dir of [bare.dataDir, asker.dataDir]) {
      const inbox = JSON.parse((await molt(['inbox', '--json', '--limit', '1000', '--data-dir', dir])).stdout)
      expect(inbox.messages.filter((e: any) => e.message.op === 'ping' || e.message.op === 'pong')).toEqual([])
    }
  }, SLOW)

  it('--show-housekeeping prints them, marked and without a cursor', async () => {
    expect((await molt(['ping', shown.listening.addresses[0], '--count', '1', '--data-dir', asker.dataDir])).code).toBe(0)
    const line = await shown.waitForJson(v => v.event === 'message' && v.message.op === 'ping')
    expect(line).toMatchObject({ housekeeping: true, peer: asker.listening.peerId })
    expect(line.cursor).toBeUndefined()
  }, SLOW)

  it('an exactly-once ping is stored, where exactly-once keeps its id across restarts', async () => {
    const sent = JSON.parse((await molt(['send', bare.listening.addresses[0], '--op', 'ping', '--payload', '{"nonce":"kept"}', '--no-wait', '--delivery', 'exactly-once', '--json', '--data-dir', asker.dataDir])).stdout)
    expect(sent.status).toBe('delivered')
    const inbox = JSON.parse((await molt(['inbox', '--json', '--limit', '1000', '--data-dir', bare.dataDir])).stdout)
    expect(inbox.messages.find((e: any) => e.message.id === sent.id)).toMatchObject({ message: { op: 'ping' } })
  }, SLOW)
})

describe('molt peers', () => {
  it('shows the RTT measured by molt ping and the role of each peer', async () => {
    expect((await molt(['ping', bare.listening.addresses[0], '--count', '1', '--data-dir', asker.dataDir])).code).toBe(0)
    const peers = JSON.parse((await molt(['peers', '--json', '--data-dir', asker.dataDir])).stdout)
    const entry = peers.find((p: any) => p.peerId === bare.listening.peerId)
    // connected unless the machine's load made libp2p drop the connection since: the figures stay either way
    expect(entry).toMatchObject({ status: expect.stringMatching(/^(connected|seen)$/), role: 'agent' })
    expect(entry.rttMs).toBeGreaterThan(0)
    expect(entry.agentVersion).toMatch(/^molt\/\d+\.\d+\.\d+ js-libp2p\/\S+ node\/\S+$/)
    const table = await molt(['peers', '--data-dir', asker.dataDir])
    const [header, ...rows] = table.stdout.trim().split('\n')
    expect(header).toMatch(/^STATUS\s+ROLE\s+LAST SEEN\s+ROUTE\s+AGENT\s+RTT\s+PEER$/)
    expect(rows.find(r => r.endsWith(bare.listening.peerId))).toMatch(/^(connected|seen)\s+agent\s+.*\s\S+@\S+\s+[\d.]+ ms\s+12D3KooW\w+$/)
  }, SLOW)

  it('lists a relay as a relay, with its molt agent version', async () => {
    const relayDir = await sandbox.dir()
    const relay = await sandbox.start(['relay', '--listen', '/ip4/127.0.0.1/tcp/0', '--stats-interval', '0', '--metrics-port', '0', '--json', '--data-dir', relayDir])
    try {
      const listening = JSON.parse(await relay.nextLine(90_000))
      expect(listening.event).toBe('listening')
      const agent = await sandbox.localAgent(await sandbox.dir(), ['--bootstrap', listening.addresses[0]])
      try {
        const entry = await eventually(async () => {
          const peers = JSON.parse((await molt(['peers', '--json', '--data-dir', agent.dataDir])).stdout)
          return peers.find((p: any) => p.peerId === listening.peerId && p.role === 'relay')
        }, 60_000, 'the agent to identify the relay')
        expect(entry.agentVersion).toMatch(/^molt\/\d+\.\d+\.\d+ /)
        // the relay's dashboard names the agent's software the same way
        const listed = await eventually(async () => {
          const status = await (await fetch(new URL('api/status', listening.dashboard))).json() as { peers: { list: Array<{ peerId: string, agent?: string }> } }
          return status.peers.list.find(p => p.peerId === agent.listening.peerId && p.agent !== undefined)
        }, 30_000, 'the dashboard to list the agent')
        expect(listed.agent).toMatch(/^molt\/\d+\.\d+\.\d+ js-libp2p\/\S+ node\/\S+$/)
        // a relay has no card: its AGENT cell is `-`, not `(no card yet)` (connected, or seen if the load dropped it)
        const table = await molt(['peers', '--data-dir', agent.dataDir])
        expect(table.stdout.split('\n').find(r => r.endsWith(listening.peerId))).toMatch(/^(connected|seen)\s+relay\s+.*\s-\s+(-|[\d.]+ ms)\s+12D3KooW\w+$/)
      } finally {
        await agent.stop()
      }
    } finally {
      await relay.stop()
    }
  }, SLOW)
})

describe('a closed stdout', () => {
  it('does not kill molt agent: it stops printing and keeps serving', async () => {
    const agent = await startAgent(await sandbox.dir())
    // the reader goes away, as `molt agent | head` does once head has its lines
    agent.child.stdout!.destroy()
    // the next message line is written into the closed pipe
    const first = await molt(['send', agent.listening.addresses[0], '--op', 'stream', '--payload', '{"action":"start","stream_id":"epipe-1"}', '--json', '--data-dir', asker.dataDir])
    expect(first.code).toBe(0)
    await eventually(() => agent.stderr.includes('molt: stdout closed (EPIPE)'), 30_000, `the agent to notice its stdout closed (stderr: ${agent.stderr})`)
    // still alive: it takes and stores another message, and its API answers
    const second = await molt(['send', agent.listening.addresses[0], '--op', 'stream', '--payload', '{"action":"start","stream_id":"epipe-2"}', '--json', '--data-dir', asker.dataDir])
    expect(JSON.parse(second.stdout)).toMatchObject({ status: 'delivered' })
    const inbox = JSON.parse((await molt(['inbox', '--json', '--data-dir', agent.dataDir])).stdout)
    expect(inbox.messages.map((e: any) => e.message.p.stream_id)).toEqual(['epipe-1', 'epipe-2'])
    expect(agent.child.exitCode).toBeNull()
    expect(await agent.stop('SIGTERM')).toEqual({ code: 0, signal: null })
  }, SLOW)
})

describe('read-only commands where no agent lives', () => {
  it('say so, exit 1 and create nothing', async () => {
    const dir = join(await sandbox.dir(), 'nobody-here')
    for (const command of [['inbox'], ['outbox'], ['peers'], ['id'], ['card'], ['inbox', '--json'], ['peers', '--json']]) {
      const { code, stdout, stderr } = await molt([...command, '--data-dir', dir])
      expect(code, command.join(' ')).toBe(1)
      expect(stderr).toContain(`no agent here: ${dir} has no identity. Start one with \`molt agent\``)
      if (command.includes('--json')) expect(JSON.parse(stdout)).toMatchObject({ error: { code: 'E_AGENT_NOT_FOUND' } })
    }
    expect(existsSync(dir)).toBe(false)
  }, SLOW)

  it('$MOLT_HOME without an agent is left untouched too', async () => {
    const home = join(await sandbox.dir(), 'fresh-home')
    sandbox.home = home
    try {
      const { code, stderr } = await molt(['inbox'])
      expect(code).toBe(1)
      expect(stderr).toContain('no agent here')
      expect(existsSync(home)).toBe(false)
    } finally {
      sandbox.home = undefined
    }
  }, SLOW)
})
