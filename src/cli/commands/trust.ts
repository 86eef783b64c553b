import { connectToRunningAgent } from '../../api/local-agent.js'
import type { MoltNode } from '../../node.js'
import type { AttestInput, TrustRecord } from '../../services/trust/index.js'
import type { TrustScore } from '../../services/trust/model/index.js'
import { integerFlag, stringFlag } from '../args.js'
import { day } from '../../constants.js'
import type { Command, CommandContext } from '../command.js'
import { subcommandCommand } from '../subcommands.js'

/** The running agent's trust API, else a short-lived node's, for the length of `use` */
async function withTrust<T> ({ dataDir, signal }: CommandContext, use: (trust: TrustAccess) => Promise<T>): Promise<T> {
  const trust = await openTrust(dataDir, signal)
  try {
    return await use(trust)
  } finally {
    await trust.close()
  }
}

export const trustCommand: Command = subcommandCommand({
  name: 'trust',
  notes: [
    '<peer> is a PeerId. Defaults: endorsement strength moderate, warning severity medium,',
    'task outcome completed, validity 365 days. With --json each result is one JSON object.',
    'Exit codes: 0 ok, 1 failure, 2 bad command line.'
  ],
  options: {
    type: { type: 'string', arg: '<type>', description: 'attest: endorsement (default), task_completion, warning, incident_report' },
    domain: { type: 'string', arg: '<capability>', description: 'attest/score: the domain or capability, e.g. translate.text' },
    strength: { type: 'string', arg: '<s>', description: 'endorsement: weak, moderate, strong, exceptional' },
    severity: { type: 'string', arg: '<s>', description: 'warning/incident_report: low, medium, high, critical' },
    outcome: { type: 'string', arg: '<o>', description: 'task_completion: completed, failed, abandoned, timeout' },
    rating: { type: 'string', arg: '<1-5>', description: 'task_completion: quality rating' },
    'task-id': { type: 'string', arg: '<id>', description: 'task_completion: the task' },
    context: { type: 'string', arg: '<text>', description: 'attest: free text (≤ 512 characters)' },
    'validity-days': { type: 'string', arg: '<n>', description: 'attest: days until it expires (default 365, at most 730)' },
    subject: { type: 'string', arg: '<peer>', description: 'list: attestations about <peer>' },
    issuer: { type: 'string', arg: '<peer>', description: 'list: attestations by <peer>' },
    limit: { type: 'string', arg: '<n>', description: 'list: at most this many (default 100)' },
    reason: { type: 'string', arg: '<text>', description: 'revoke: why' }
  }
}, [
  {
    name: 'attest',
    usage: '<peer> --type endorsement|task_completion|warning|incident_report [claims…]',
    summary: 'sign an attestation and publish it on molt/trust/1 (protocols/trust.md)',
    positionals: 1,
    options: ['type', 'domain', 'strength', 'severity', 'outcome', 'rating', 'task-id', 'context', 'validity-days'],
    async run (context, [subject]) {
      const v = context.args.values
      const validityDays = integerFlag(stringFlag(v, 'validity-days'), 'validity-days', 1, 730)
      const input = dropUndefined({
        subject,
        type: (stringFlag(v, 'type') ?? 'endorsement') as AttestInput['type'],
        domain: stringFlag(v, 'domain'),
        strength: stringFlag(v, 'strength'),
        severity: stringFlag(v, 'severity'),
        outcome: stringFlag(v, 'outcome'),
        rating: integerFlag(stringFlag(v, 'rating'), 'rating', 1, 5),
        taskId: stringFlag(v, 'task-id'),
        context: stringFlag(v, 'context'),
        validity: validityDays !== undefined ? validityDays * day : undefined
      }) as unknown as AttestInput
      const record = await withTrust(context, async (trust) => trust.attest(input))
      context.out.result(formatRecord(record), record)
    }
  },
  {
    name: 'score',
    usage: '<peer> [--domain <d>]',
    summary: 'this agent\'s score of <peer>: score, confidence, band, explain',
    positionals: 1,
    options: ['domain'],
    async run (context, [peer]) {
      const score = await withTrust(context, async (trust) => trust.score(peer, stringFlag(context.args.values, 'domain')))
      context.out.result(formatScore(score), score)
    }
  },
  {
    name: 'list',
    usage: '[--subject <peer> | --issuer <peer>] [--limit <n>]',
    summary: 'stored attestations, newest first',
    options: ['subject', 'issuer', 'limit'],
    async run (context) {
      const v = context.args.values
      const query = { subject: stringFlag(v, 'subject'), issuer: stringFlag(v, 'issuer'), limit: integerFlag(stringFlag(v, 'limit'), 'limit', 1, 1000) }
      const records = await withTrust(context, async (trust) => trust.list(query))
      context.out.result(records.length === 0 ? 'no attestations' : records.map(formatRecord), { attestations: records })
    }
  },
  {
    name: 'revoke',
    usage: '<id> [--reason <text>]',
    summary: 'withdraw one of this agent\'s attestations',
    positionals: 1,
    options: ['reason'],
    async run (context, [id]) {
      const revocation = await withTrust(context, async (trust) => trust.revoke(id, stringFlag(context.args.values, 'reason')))
      context.out.result(`revoked ${id} (revocation ${revocation.id as string})`, { revocation })
    }
  }
])

interface TrustAccess {
  score(peer: string, domain?: string): Promise<TrustScore>
  list(query: { subject?: string, issuer?: string, limit?: number }): Promise<TrustRecord[]>
  attest(input: AttestInput): Promise<TrustRecord>
  revoke(id: string, reason?: string): Promise<Record<string, unknown>>
  close(): Promise<void>
}

/** The running agent's API when there is one, else a short-lived node on loopback (its records spread by sync later) */
async function openTrust (dataDir: string, signal: AbortSignal): Promise<TrustAccess> {
  const running = await connectToRunningAgent(dataDir, { signal })
  if (running != null) {
    const c = running.client
    return {
      score: async (peer, domain) => c.trust<TrustScore>('GET', `/${encodeURIComponent(peer)}${domain !== undefined ? `?domain=${encodeURIComponent(domain)}` : ''}`, undefined, { signal }),
      list: async (q) => (await c.trust<{ attestations: TrustRecord[] }>('GET', `/attestations?${new URLSearchParams(dropUndefined({ subject: q.subject, issuer: q.issuer, limit: q.limit?.toString() }) as Record<string, string>).toString()}`, undefined, { signal })).attestations,
      // the API's body names the validity validityMs
      attest: async ({ validity, ...input }) => c.trust<TrustRecord>('POST', '/attestations', dropUndefined({ ...input, subject: input.subject.toString(), validityMs: validity }), { signal }),
      revoke: async (id, reason) => (await c.trust<{ revocation: Record<string, unknown> }>('POST', '/revocations', dropUndefined({ id, reason }), { signal })).revocation,
      close: async () => {}
    }
  }
  // libp2p is loaded only when no agent runs here
  const { createMoltNode } = await import('../../node.js')
  const node: MoltNode = await createMoltNode({ dataDir, listen: ['/ip4/127.0.0.1/tcp/0'] })
  return {
    score: async (peer, domain) => node.trust.score(peer, domain !== undefined ? { domain } : {}),
    list: async (q) => node.trust.list(q),
    attest: async (input) => node.trust.get((await node.trust.attest(input)).id) as TrustRecord,
    revoke: async (id, reason) => await node.trust.revoke(id, reason) as unknown as Record<string, unknown>,
    close: async () => { await node.stop() }
  }
}

function formatScore (s: TrustScore): string[] {
  return [
    `${s.peer}${s.domain !== undefined ? ` (${s.domain})` : ''}: score ${s.score.toFixed(3)} ${s.band}, confidence ${s.confidence.toFixed(3)} ${s.confidenceBand}`,
    `evidence for ${s.positive.toFixed(3)}, against ${s.negative.toFixed(3)}`,
    ...s.explain.map(c => `  ${c.value >= 0 ? '+' : ''}${c.value.toFixed(4)} ${c.source}${c.type !== undefined ? ` ${c.type}` : ''}${c.id !== undefined ? ` ${c.id.slice(0, 12)}` : ''}${c.issuer !== undefined ? ` by ${c.issuer}` : ''}${c.issuerWeight !== undefined ? ` (weight ${c.issuerWeight})` : ''}`)
  ]
}

function formatRecord (r: TrustRecord): string {
  const a = r.attestation
  const claim = a.claims.strength ?? a.claims.severity ?? a.claims.outcome ?? a.claims.credential_id?.slice(0, 12) ?? ''
  return `${a.id.slice(0, 12)} ${a.type} ${claim}${a.claims.domain !== undefined ? ` [${a.claims.domain}]` : ''} ${r.issuer} → ${r.subject} ${new Date(a.issued).toISOString()}${r.revoked ? ' REVOKED' : ''}`
}

function dropUndefined (o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, x]) => x !== undefined))
}
