import { setTimeout as sleep } from 'node:timers/promises'
import * as z from 'zod'
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js'
import { ApiError, type ApiClient, type ApiMessageInit, type InboxResponse } from '../api/index.js'
import { CLASSIFICATIONS, OPS, type Classification, type Op } from '../moltspeak/index.js'
import { DELIVERY_MODES } from '../delivery/constants.js'
import { OUTCOMES, SEVERITIES, STRENGTHS } from '../services/trust/index.js'
import type { TrustScore } from '../services/trust/model/index.js'
import * as c from './constants.js'
import { registerTaskTools } from './task-tools.js'

/*
 * The MCP tools. Every tool calls the agent's local API (ApiClient), so the
 * agent validates, rate-limits and applies its trust policy exactly as for any
 * other client; nothing here talks to the network itself. A failure becomes a
 * tool result with `isError: true` and the API's error code in the text.
 */

const peer = z.string().min(1).max(c.MAX_PEER_LENGTH)
const timeoutMs = z.number().int().min(1).max(c.MAX_TOOL_TIMEOUT_MS)
const payload = z.record(z.string(), z.unknown())
/** Any JSON object the API answers: the schema names the main fields, the rest passes through */
const message = z.looseObject({ v: z.string(), id: z.string(), ts: z.number(), op: z.string(), p: payload.optional(), re: z.string().optional() })
const inboxEntry = z.object({ cursor: z.number().int(), receivedAt: z.number(), peer: z.string(), route: z.string(), message })
const trustScore = z.object({ score: z.number(), confidence: z.number(), band: z.string(), confidenceBand: z.string() })
const cardSchema = z.looseObject({
  peer_id: z.string(), did: z.string(), name: z.string(), org: z.string(), description: z.string().optional(),
  capabilities: z.array(z.looseObject({ name: z.string() })), addresses: z.array(z.string()), expires: z.number()
})

const TASKS_NOTE = 'To hand work to other agents with "first agent wins" claims, use offer_task, claim_task and complete_task.'

export function registerTools (server: McpServer, client: ApiClient): void {
  server.registerTool('whoami', {
    title: 'This agent',
    description: 'This agent\'s PeerId (its address: give it to other agents), DID, name, capabilities and listen addresses.',
    inputSchema: {},
    outputSchema: {
      peerId: z.string(), did: z.string(), name: z.string(), org: z.string(), capabilities: z.array(z.string()), addresses: z.array(z.string())
    },
    annotations: { readOnlyHint: true }
  }, async (_args, { signal }) => run(async () => {
    const id = await client.identity({ signal })
    return { peerId: id.peerId, did: id.did, name: id.agent.name, org: id.agent.org, capabilities: id.agent.capabilities, addresses: id.addresses }
  }))

  server.registerTool('list_peers', {
    title: 'Known agents',
    description: 'Every agent this node knows, most recently seen first: status (connected, seen, stale), name, capabilities.',
    inputSchema: {},
    outputSchema: {
      peers: z.array(z.looseObject({ peerId: z.string(), status: z.string(), lastSeen: z.number(), capabilities: z.array(z.string()) }))
    },
    annotations: { readOnlyHint: true }
  }, async (_args, { signal }) => run(async () => ({ peers: (await client.peers({ signal })).peers })))

  server.registerTool('send_message', {
    title: 'Send a message',
    description: [
      'Send one MoltSpeak message to another agent without waiting for a reply.',
      'To answer a request read from the inbox: op "respond", re = its message id, payload {"status":"success","data":…}, to = its peer.',
      `status: delivered (the peer acknowledged), stored (held in its relay mailboxes) or queued (the outbox retries it). ${TASKS_NOTE}`
    ].join(' '),
    inputSchema: {
      to: peer.describe('PeerId, or a multiaddr ending in /p2p/<PeerId>'),
      op: z.enum(OPS as unknown as [Op, ...Op[]]).describe('MoltSpeak operation'),
      payload: payload.optional().describe('the message payload `p` (per-op rules: query needs domain; respond needs status)'),
      re: z.string().max(c.MAX_PEER_LENGTH).optional().describe('id of the message this one answers'),
      cls: z.enum(CLASSIFICATIONS as unknown as [Classification, ...Classification[]]).optional().describe('classification (default int)'),
      delivery: z.enum(DELIVERY_MODES).optional().describe('default at-least-once'),
      sign: z.boolean().optional().describe('sign with this agent\'s key')
    },
    outputSchema: {
      id: z.string(), peer: z.string(), status: z.enum(['delivered', 'stored', 'queued']), delivered: z.boolean(), delivery: z.string(), route: z.string().optional()
    }
  }, async (args, { signal }) => run(async () => {
    const init: ApiMessageInit = { op: args.op, p: args.payload ?? {} }
    if (args.re !== undefined) init.re = args.re
    if (args.cls !== undefined) init.cls = args.cls
    const sent = await client.send(args.to, init, { signal, sign: args.sign, delivery: args.delivery })
    return { id: sent.id, peer: sent.peer, status: sent.status, delivered: sent.delivered, delivery: sent.delivery, ...(sent.route !== undefined ? { route: sent.route } : {}) }
  }))

  server.registerTool('request', {
    title: 'Ask another agent',
    description: [
      'Send a request (default op query; payload e.g. {"domain":"weather","intent":"forecast","params":{…}}) and wait for the reply.',
      'ok is false when the agent answered with an error message.',
      `Waits up to timeoutMs (default ${c.DEFAULT_REQUEST_TIMEOUT_MS} ms); no reply in time is an E_TIMEOUT error.`
    ].join(' '),
    inputSchema: {
      to: peer.describe('PeerId, or a multiaddr ending in /p2p/<PeerId>'),
      op: z.enum(OPS as unknown as [Op, ...Op[]]).optional().describe('default query'),
      payload: payload.describe('the request payload `p`'),
      timeoutMs: timeoutMs.optional(),
      sign: z.boolean().optional()
    },
    outputSchema: { ok: z.boolean(), reply: message }
  }, async (args, { signal }) => run(async () => {
    const { reply } = await client.request(args.to, { op: args.op ?? 'query', p: args.payload }, {
      signal, sign: args.sign, timeoutMs: args.timeoutMs ?? c.DEFAULT_REQUEST_TIMEOUT_MS
    })
    return { ok: reply.op !== 'error', reply: reply as unknown as Record<string, unknown> }
  }))

  server.registerTool('read_inbox', {
    title: 'Read received messages',
    description: [
      'Messages this agent received after the cursor `after` (0 = from the oldest kept), oldest first.',
      'Call again with after = next to get what came later: nothing is lost between calls.',
      `With waitMs (≤ ${c.MAX_INBOX_WAIT_MS}) it waits that long for a first message when there is none yet.`,
      `A page holds at most ${c.MAX_INBOX_PAGE_BYTES} bytes of messages (always at least one).`
    ].join(' '),
    inputSchema: {
      after: z.number().int().min(0).optional().describe('cursor: only messages after it (default 0)'),
      limit: z.number().int().min(1).max(c.MAX_INBOX_LIMIT).optional().describe(`default ${c.DEFAULT_INBOX_LIMIT}`),
      waitMs: z.number().int().min(0).max(c.MAX_INBOX_WAIT_MS).optional()
    },
    outputSchema: { messages: z.array(inboxEntry), next: z.number().int() },
    annotations: { readOnlyHint: true }
  }, async (args, { signal }) => run(async () => {
    const page = fitPage(await readInbox(client, args.after ?? 0, args.limit ?? c.DEFAULT_INBOX_LIMIT, args.waitMs ?? 0, signal))
    return { messages: page.messages as unknown as Array<Record<string, unknown>>, next: page.next }
  }))

  server.registerTool('find_agents', {
    title: 'Find agents by capability',
    description: [
      'Agents offering a capability (LAN first, then the DHT), each with its verified card and this agent\'s trust score of it',
      '(0..1, 0.5 = no evidence), highest trust first. minTrust drops agents scoring below it.'
    ].join(' '),
    inputSchema: {
      capability: z.string().min(1).max(c.MAX_CAPABILITY_LENGTH).describe('e.g. weather.forecast'),
      limit: z.number().int().min(1).max(100).optional().describe(`default ${c.DEFAULT_FIND_LIMIT}`),
      timeoutMs: timeoutMs.optional().describe(`how long to search (default ${c.DEFAULT_FIND_TIMEOUT_MS})`),
      minTrust: z.number().min(0).max(1).optional(),
      domain: z.string().min(1).max(c.MAX_DOMAIN_LENGTH).optional().describe('score trust in this domain')
    },
    outputSchema: {
      agents: z.array(z.object({
        peerId: z.string(), name: z.string(), org: z.string(), description: z.string().optional(), capabilities: z.array(z.string()),
        addresses: z.array(z.string()), source: z.string(), trust: trustScore
      }))
    },
    annotations: { readOnlyHint: true }
  }, async (args, { signal }) => run(async () => {
    const { agents } = await client.discover({ capability: args.capability, limit: args.limit ?? c.DEFAULT_FIND_LIMIT, timeoutMs: args.timeoutMs ?? c.DEFAULT_FIND_TIMEOUT_MS }, { signal })
    const scored = await Promise.all(agents.map(async (agent) => {
      const trust = await scoreOf(client, agent.peerId, args.domain, signal)
      const { card } = agent
      return {
        peerId: agent.peerId,
        name: card.name,
        org: card.org,
        ...(card.description !== undefined ? { description: card.description } : {}),
        capabilities: card.capabilities.map(cap => cap.name),
        addresses: card.addresses,
        source: agent.source,
        trust: { score: trust.score, confidence: trust.confidence, band: trust.band, confidenceBand: trust.confidenceBand }
      }
    }))
    // stable: equal scores keep discovery's order (LAN before DHT)
    const kept = scored.filter(a => args.minTrust === undefined || a.trust.score >= args.minTrust)
    kept.sort((a, b) => b.trust.score - a.trust.score)
    return { agents: kept }
  }))

  server.registerTool('get_card', {
    title: 'Agent card',
    description: 'An agent\'s signed card (name, org, capabilities, addresses), verified; this agent\'s own without `peer`.',
    inputSchema: {
      peer: peer.optional().describe('PeerId or multiaddr; none = this agent'),
      force: z.boolean().optional().describe('fetch again even when a cached card is valid'),
      timeoutMs: timeoutMs.optional()
    },
    outputSchema: { card: cardSchema },
    annotations: { readOnlyHint: true }
  }, async (args, { signal }) => run(async () => {
    const { card } = await client.card({ peer: args.peer, force: args.force, timeoutMs: args.timeoutMs }, { signal })
    return { card: card as unknown as Record<string, unknown> }
  }))

  server.registerTool('trust_score', {
    title: 'Trust score',
    description: 'This agent\'s trust in a peer from signed attestations: score 0..1 (0.5 = no evidence), confidence, band, and the main contributions.',
    inputSchema: {
      peer: z.string().min(1).max(128).describe('PeerId'),
      domain: z.string().min(1).max(c.MAX_DOMAIN_LENGTH).optional()
    },
    outputSchema: {
      peer: z.string(), domain: z.string().optional(), score: z.number(), confidence: z.number(), band: z.string(), confidenceBand: z.string(),
      positive: z.number(), negative: z.number(), explain: z.array(z.unknown())
    },
    annotations: { readOnlyHint: true }
  }, async (args, { signal }) => run(async () => ({ ...await scoreOf(client, args.peer, args.domain, signal) })))

  server.registerTool('attest', {
    title: 'Attest about an agent',
    description: [
      'Sign and publish a trust record about another agent: endorsement (strength), task_completion (outcome, rating 1-5),',
      'warning or incident_report (severity). It moves this agent\'s and its peers\' trust scores; it cannot be about this agent itself.'
    ].join(' '),
    inputSchema: {
      subject: z.string().min(1).max(128).describe('PeerId of the agent'),
      type: z.enum(['endorsement', 'task_completion', 'warning', 'incident_report']),
      domain: z.string().min(1).max(c.MAX_DOMAIN_LENGTH).optional(),
      strength: z.enum(STRENGTHS).optional(),
      severity: z.enum(SEVERITIES).optional(),
      outcome: z.enum(OUTCOMES).optional(),
      rating: z.number().int().min(1).max(5).optional(),
      taskId: z.string().min(1).max(c.MAX_DOMAIN_LENGTH).optional(),
      context: z.string().max(c.MAX_TEXT_LENGTH).optional()
    },
    outputSchema: { id: z.string(), type: z.string(), issuer: z.string(), subject: z.string(), revoked: z.boolean() }
  }, async (args, { signal }) => run(async () => {
    const record = await client.trust<{ attestation: { id: string, type: string }, issuer: string, subject: string, revoked: boolean }>(
      'POST', '/attestations', args, { signal })
    return { id: record.attestation.id, type: record.attestation.type, issuer: record.issuer, subject: record.subject, revoked: record.revoked }
  }))

  registerTaskTools(server, client, run)
}

async function scoreOf (client: ApiClient, peerId: string, domain: string | undefined, signal: AbortSignal): Promise<TrustScore> {
  const query = domain !== undefined ? `?domain=${encodeURIComponent(domain)}` : ''
  return client.trust<TrustScore>('GET', `/${encodeURIComponent(peerId)}${query}`, undefined, { signal })
}

/** A page of the inbox; with `waitMs`, looks again until a message arrives or the time is up */
async function readInbox (client: ApiClient, after: number, limit: number, waitMs: number, signal: AbortSignal): Promise<InboxResponse> {
  const deadline = Date.now() + waitMs
  for (;;) {
    const page = await client.inbox({ after, limit }, { signal })
    if (page.messages.length > 0 || Date.now() >= deadline) return page
    await sleep(Math.min(c.INBOX_POLL_MS, Math.max(0, deadline - Date.now())), undefined, { signal })
  }
}

/** The first entries of a page that fit in MAX_INBOX_PAGE_BYTES (at least one); `next` after the last kept */
function fitPage (page: InboxResponse): InboxResponse {
  let bytes = 0
  let kept = 0
  for (const entry of page.messages) {
    bytes += Buffer.byteLength(JSON.stringify(entry))
    if (kept > 0 && bytes > c.MAX_INBOX_PAGE_BYTES) break
    kept++
  }
  if (kept === page.messages.length) return page
  const messages = page.messages.slice(0, kept)
  return { messages, next: messages[messages.length - 1].cursor }
}

/** The tool's answer as structured content (and as text, for clients that read only text), or an error result */
async function run (task: () => Promise<Record<string, unknown>>): Promise<CallToolResult> {
  try {
    const value = await task()
    return { content: [{ type: 'text', text: JSON.stringify(value) }], structuredContent: value }
  } catch (err) {
    return { content: [{ type: 'text', text: describeError(err) }], isError: true }
  }
}

/** One line a model can act on: the API's MoltSpeak code, its message and the field it names */
export function describeError (err: unknown): string {
  if (err instanceof ApiError) return `${err.code}: ${err.message}${err.field !== undefined ? ` (field ${err.field})` : ''}`
  const e = err as { name?: string, message?: string, cause?: { message?: string } } | undefined
  if (e?.name === 'AbortError' || e?.name === 'TimeoutError') return 'E_TIMEOUT: cancelled or timed out before the agent answered'
  if (e?.name === 'TypeError' && e.message === 'fetch failed') {
    return `E_INTERNAL: the molt agent's local API does not answer (${e.cause?.message ?? 'connection failed'}); is the agent still running?`
  }
  return `E_INTERNAL: ${e?.message ?? String(err)}`
}
