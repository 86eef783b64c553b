import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { ApiClient } from '../../src/api/index.js'
import { CliSandbox, type LocalAgent } from '../support/cli.js'
import { McpSession, alive, errorText } from '../support/mcp.js'
import { agentPair, apiOf } from '../support/agent-pair.js'
import { eventually } from '../support/eventually.js'

const CAPABILITY = 'mcp.echo'
const TOOLS = ['attest', 'claim_task', 'complete_task', 'find_agents', 'get_card', 'list_peers', 'list_tasks', 'offer_task', 'read_inbox', 'request', 'send_message', 'trust_score', 'whoami']

describe('molt mcp attached to a running agent (SDK Client over stdio, real agents)', () => {
  const sandbox = new CliSandbox()
  let a: LocalAgent
  let b: LocalAgent
  let bApi: ApiClient
  let mcp: McpSession

  beforeAll(async () => {
    ;({ a, b } = await agentPair(sandbox, CAPABILITY))
    bApi = await apiOf(b)
    mcp = await new McpSession(['--data-dir', a.dataDir]).start()
  }, 60_000)

  /** Read the inbox through the tool to its end (it may hold more than a page): the newest cursor */
  async function drain (): Promise<number> {
    let last = 0
    for (;;) {
      const page = await mcp.ok('read_inbox', { after: last, limit: 100 })
      if (page.messages.length === 0) return last
      last = page.next
    }
  }

  afterAll(async () => {
    await mcp?.close()
    await sandbox.cleanup()
  })

  it('lists every tool, each with JSON schemas for its input and output', async () => {
    const { tools } = await mcp.client.listTools()
    expect(tools.map(t => t.name).sort()).toEqual(TOOLS)
    for (const tool of tools) {
      expect(tool.description, tool.name).toBeTruthy()
      expect(tool.inputSchema.type, tool.name).toBe('object')
      expect(tool.outputSchema?.type, tool.name).toBe('object')
    }
    const request = tools.find(t => t.name === 'request')!
    expect(request.inputSchema.required).toEqual(expect.arrayContaining(['to', 'payload']))
    expect((request.inputSchema.properties as any).op.enum).toContain('query')
    expect(mcp.stderr).toContain(`using the running agent ${a.listening.peerId}`)
  })

  it('whoami and list_peers', async () => {
    const me = await mcp.ok('whoami')
    expect(me).toMatchObject({ peerId: a.listening.peerId, did: expect.stringMatching(/^did:molt:key:z/) })
    const { peers } = await mcp.ok('list_peers')
    expect(peers).toContainEqual(expect.objectContaining({ peerId: b.listening.peerId, status: 'connected', name: 'bob', capabilities: [CAPABILITY] }))
  })

  it('send_message delivers through the agent', async () => {
    const after = (await bApi.inbox({ after: 0, limit: 1000 })).next
    const sent = await mcp.ok('send_message', { to: b.listening.addresses[0], op: 'register', payload: { from: 'mcp' } })
    expect(sent).toMatchObject({ peer: b.listening.peerId, status: 'delivered', delivered: true, delivery: 'at-least-once' })
    const { messages } = await bApi.inbox({ after })
    expect(messages.map(m => [m.peer, m.message.id, m.message.p])).toContainEqual([a.listening.peerId, sent.id, { from: 'mcp' }])
  })

  it('request waits for the reply', async () => {
    const { ok, reply } = await mcp.ok('request', { to: b.listening.peerId, payload: { domain: 'test', intent: 'echo', params: { n: 42 } }, timeoutMs: 15_000 })
    expect(ok).toBe(true)
    expect(reply).toMatchObject({ op: 'respond', p: { status: 'success', data: { echo: { domain: 'test', params: { n: 42 } } } } })
  })

  it('read_inbox pages by cursor, and waits for a message with waitMs', async () => {
    const last = await drain()
    // a read that waits, then a message: the read answers with it
    const waiting = mcp.ok('read_inbox', { after: last, waitMs: 30_000 })
    const sent = await bApi.send(a.listening.peerId, { op: 'register', p: { n: 1 } })
    const page = await waiting
    expect(page.messages.map((m: any) => m.message.id)).toEqual([sent.id])
    expect(page.messages[0]).toMatchObject({ peer: b.listening.peerId, cursor: page.next, message: { op: 'register', p: { n: 1 } } })
    expect(page.next).toBeGreaterThan(last)
    // nothing after it: an empty page, same cursor
    expect(await mcp.ok('read_inbox', { after: page.next })).toEqual({ messages: [], next: page.next })
  })

  it('read_inbox keeps a page within its byte bound and resumes at next', async () => {
    const last = await drain()
    // three messages of 900 kB: two fit in the 2 MiB page, the third comes with the next call
    const blob = 'x'.repeat(900_000)
    const ids: string[] = []
    for (let n = 0; n < 3; n++) ids.push((await bApi.send(a.listening.peerId, { op: 'register', p: { n, blob } })).id)
    const first = await mcp.ok('read_inbox', { after: last, limit: 10 })
    expect(first.messages.map((m: any) => m.message.id)).toEqual(ids.slice(0, 2))
    expect(first.next).toBe(first.messages[1].cursor)
    const second = await mcp.ok('read_inbox', { after: first.next, limit: 10 })
    expect(second.messages.map((m: any) => m.message.id)).toEqual(ids.slice(2))
    expect(second.messages[0].message.p.blob).toHaveLength(900_000)
  }, 60_000)

  it('find_agents by capability, with trust scores; minTrust filters', async () => {
    const { agents } = await mcp.ok('find_agents', { capability: CAPABILITY, timeoutMs: 10_000 })
    expect(agents).toEqual([expect.objectContaining({
      peerId: b.listening.peerId, name: 'bob', org: 'test', capabilities: [CAPABILITY],
      trust: expect.objectContaining({ score: expect.any(Number), confidence: expect.any(Number), band: expect.any(String) })
    })])
    expect((await mcp.ok('find_agents', { capability: CAPABILITY, minTrust: 1 })).agents).toEqual([])
    expect((await mcp.ok('find_agents', { capability: 'mcp.nobody', timeoutMs: 2000 })).agents).toEqual([])
  })

  it('get_card: its own and a peer\'s, verified', async () => {
    expect((await mcp.ok('get_card')).card).toMatchObject({ peer_id: a.listening.peerId })
    const { card } = await mcp.ok('get_card', { peer: b.listening.addresses[0], force: true, timeoutMs: 10_000 })
    expect(card).toMatchObject({ peer_id: b.listening.peerId, name: 'bob', capabilities: [{ name: CAPABILITY }] })
  })

  it('attest raises the trust score that trust_score and find_agents report', async () => {
    const before = await mcp.ok('trust_score', { peer: b.listening.peerId, domain: 'mcp-test' })
    const record = await mcp.ok('attest', { subject: b.listening.peerId, type: 'endorsement', domain: 'mcp-test', strength: 'strong' })
    expect(record).toMatchObject({ type: 'endorsement', issuer: a.listening.peerId, subject: b.listening.peerId, revoked: false })
    const after = await mcp.ok('trust_score', { peer: b.listening.peerId, domain: 'mcp-test' })
    expect(after.score).toBeGreaterThan(before.score)
    expect(after.positive).toBeGreaterThan(before.positive)
    const { agents } = await mcp.ok('find_agents', { capability: CAPABILITY, domain: 'mcp-test' })
    expect(agents[0].trust.score).toBe(after.score)
  })

  it('errors come back as tool errors with the API\'s code, and the server keeps serving', async () => {
    expect(errorText(await mcp.call('send_message', { to: 'not-a-peer', op: 'register' }))).toMatch(/^E_INVALID_PARAM: .* \(field to\)$/)
    // the agent's own MoltSpeak validation: a query needs p.domain
    expect(errorText(await mcp.call('request', { to: b.listening.peerId, payload: { intent: 'x' } }))).toMatch(/^E_MISSING_FIELD: .*p\.domain/)
    // the schema refuses before the agent is asked
    expect(errorText(await mcp.call('send_message', { to: b.listening.peerId, op: 'bogus' }))).toMatch(/Input validation error/)
    expect(errorText(await mcp.call('read_inbox', { limit: 100_000 }))).toMatch(/Input validation error/)
    expect(errorText(await mcp.call('no_such_tool'))).toMatch(/Tool no_such_tool not found/)
    // the agent's trust policy: no attesting about oneself
    expect(errorText(await mcp.call('attest', { subject: a.listening.peerId, type: 'endorsement' }))).toMatch(/^E_INVALID_PARAM: /)
    expect(errorText(await mcp.call('trust_score', { peer: 'nobody' }))).toMatch(/^E_INVALID_PARAM: .*\(field peer\)/)
    // an agent nobody can reach: the node's error, not a crash
    const stranger = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    expect(errorText(await mcp.call('get_card', { peer: stranger, timeoutMs: 3000 }))).toMatch(/^E_[A-Z_]+: /)
    expect(errorText(await mcp.call('request', { to: stranger, payload: { domain: 'x' }, timeoutMs: 2000 }))).toMatch(/^E_[A-Z_]+: /)
    // still alive and answering; nothing but protocol on its stdout
    expect((await mcp.ok('whoami')).peerId).toBe(a.listening.peerId)
    expect(mcp.errors).toEqual([])
    expect(alive(mcp.pid!)).toBe(true)
  }, 60_000)

  it('offer_task / list_tasks: a task offered through MCP is claimed and completed by the peer; the result shows in list_tasks', async () => {
    const { task } = await mcp.ok('offer_task', { to: [b.listening.peerId], id: 'mcp-offer-1', type: 'echo', params: { n: 7 } })
    expect(task).toMatchObject({ id: 'mcp-offer-1', role: 'offerer', state: 'offered' })
    await eventually(async () => (await bApi.tasks<{ tasks: Array<{ id: string }> }>('GET', '?role=worker')).tasks.some(t => t.id === 'mcp-offer-1'), 30_000, 'the offer at b')
    expect(await bApi.tasks('POST', '/mcp-offer-1', { action: 'claim' })).toMatchObject({ state: 'claimed' })
    await bApi.tasks('POST', '/mcp-offer-1', { action: 'complete', result: { n: 49 } })
    const done = await eventually(async () => {
      const { tasks } = await mcp.ok('list_tasks', { role: 'offerer', state: 'completed' })
      return tasks.find((t: { id: string }) => t.id === 'mcp-offer-1')
    }, 30_000, 'the completion at a')
    expect(done).toMatchObject({ worker: b.listening.peerId, result: { n: 49 } })
  }, 90_000)

  it('claim_task / complete_task: a task offered to this agent is claimed and completed through MCP; a finished or unknown task is a named error', async () => {
    await bApi.tasks('POST', '', { to: a.listening.peerId, task: { id: 'mcp-claim-1', type: 'echo' } })
    await eventually(async () => (await mcp.ok('list_tasks', { role: 'worker', state: 'offered' })).tasks.some((t: { id: string }) => t.id === 'mcp-claim-1'), 30_000, 'the offer at a')
    expect((await mcp.ok('claim_task', { id: 'mcp-claim-1' })).task).toMatchObject({ state: 'claimed', worker: a.listening.peerId })
    expect((await mcp.ok('complete_task', { id: 'mcp-claim-1', result: 'done' })).task).toMatchObject({ state: 'completed' })
    await eventually(async () => (await bApi.tasks<{ state: string }>('GET', '/mcp-claim-1')).state === 'completed', 30_000, 'the completion at b')
    // a finished task cannot be completed again; unknown ones are named
    expect(errorText(await mcp.call('complete_task', { id: 'mcp-claim-1', result: 'again' }))).toMatch(/^E_INVALID_PARAM: /)
    expect(errorText(await mcp.call('claim_task', { id: 'no-such-task' }))).toMatch(/^E_TASK_UNKNOWN: /)
  }, 90_000)

  it('a tool whose agent went away answers an error that says so', async () => {
    const cDir = await sandbox.dir()
    const c = await sandbox.agent(cDir)
    const session = await new McpSession(['--data-dir', cDir]).start()
    try {
      expect((await session.ok('whoami')).peerId).toBe(c.listening.peerId)
      await c.stop('SIGKILL')
      expect(errorText(await session.call('whoami'))).toMatch(/^E_INTERNAL: the molt agent's local API does not answer/)
      expect(alive(session.pid!)).toBe(true)
    } finally {
      await session.close()
    }
  }, 60_000)
})

describe('molt mcp --help', () => {
  const sandbox = new CliSandbox()
  afterAll(async () => { await sandbox.cleanup() })

  // through the CLI's main() in this process: usage errors are decided before any server or node starts
  it('prints the usage and the tools', async () => {
    const { code, stdout } = await sandbox.call(['mcp', '--help'])
    expect(code).toBe(0)
    expect(stdout).toMatch(/Model Context Protocol/)
    expect(stdout).toMatch(/find_agents/)
    expect(stdout).toMatch(/--no-mdns/)
  })

  it('refuses --json (stdout is the protocol) and a bad --listen, with exit code 2', async () => {
    const { code, stderr } = await sandbox.call(['mcp', '--json', '--data-dir', await sandbox.dir()])
    expect(code).toBe(2)
    expect(stderr).toMatch(/takes no --json/)
    const bad = await sandbox.call(['mcp', '--listen', 'nope', '--data-dir', await sandbox.dir()])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/--listen nope is not a multiaddr/)
    expect(bad.stdout).toBe('')
  })
})
