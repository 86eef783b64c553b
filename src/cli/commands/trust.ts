import { connectToRunningAgent } from '../../api/local-agent.js'
import type { MoltNode } from '../../node.js'
import type { AttestInput, TrustRecord } from '../../services/trust/index.js'
import type { TrustScore } from '../../services/trust/model/index.js'
import { integerFlag, stringFlag } from '../args.js'
import { UsageError } from '../errors.js'
import { day } from '../../constants.js'
import type { Command } from '../command.js'

const SUBCOMMANDS = ['attest', 'score', 'list', 'revoke'] as const

export const trustCommand: Command = {
  spec: {
    name: 'trust',
    args: '<attest|score|list|revoke> …',
    details: [
      'molt trust attest <peer> --type endorsement|task_completion|warning|incident_report [claims…]',
      '                       sign an attestation and publish it on molt/trust/1 (protocols/trust.md)',
      'molt trust score <peer> [--domain <d>]   this agent\'s score of <peer>: score, confidence, band, explain',
      'molt trust list [--subject <peer> | --issuer <peer>] [--limit <n>]   stored attestations, newest first',
      'molt trust revoke <id> [--reason <text>]  withdraw one of this agent\'s attestations',
      '',
      '<peer> is a PeerId. Defaults: endorsement strength moderate, warning severity medium,',
      'task outcome completed, validity 365 days. With --json each result is one JSON object.'
    ].join('\n'),
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
  },

  async run ({ args, dataDir, out, signal }) {
    const [sub, target, ...extra] = args.positionals
    if (sub === undefined) throw new UsageError('molt trust needs a subcommand: attest, score, list or revoke (see molt trust --help)')
    if (!(SUBCOMMANDS as readonly string[]).includes(sub)) throw new UsageError(`unknown subcommand "${sub}" (see molt trust --help)`)
    if (extra.length > 0 || (sub === 'list' && target !== undefined)) throw new UsageError('unexpected argument (see molt trust --help)')
    if (sub !== 'list' && target === undefined) throw new UsageError(`molt trust ${sub} needs ${sub === 'revoke' ? '<id>' : '<peer>'}`)
    const v = args.values
    const trust = await openTrust(dataDir, signal)
    try {
      if (sub === 'score') {
        const domain = stringFlag(v, 'domain')
        const score = await trust.score(target as string, domain)
        out.result(formatScore(score), score)
      } else if (sub === 'list') {
        const limit = integerFlag(stringFlag(v, 'limit'), 'limit', 1, 1000)
        const records = await trust.list({ subject: stringFlag(v, 'subject'), issuer: stringFlag(v, 'issuer'), limit })
        out.result(records.length === 0 ? 'no attestations' : records.map(formatRecord), { attestations: records })
      } else if (sub === 'revoke') {
        const revocation = await trust.revoke(target as string, stringFlag(v, 'reason'))
        out.result(`revoked ${target as string} (revocation ${revocation.id as string})`, { revocation })
      } else {
        const validityDays = integerFlag(stringFlag(v, 'validity-days'), 'validity-days', 1, 730)
        const input = dropUndefined({
          subject: target as string,
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
        const record = await trust.attest(input)
        out.result(formatRecord(record), record)
      }
    } finally {
      await trust.close()
    }
  }
}

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
