import { join } from 'node:path'
import { booleanFlag, integerFlag, peerPositional, stringFlag } from '../args.js'
import { UsageError } from '../errors.js'
import { formatCard } from '../output.js'
import { openNetwork } from '../network.js'
import type { Command } from '../command.js'
import { requireAgentHere } from '../agent-here.js'
import { loadConfig } from '../../config/index.js'
import { loadRevocations, verifyOrgClaim, type OrgRevocation } from '../../identity/org/index.js'
import { connectToRunningAgent } from '../../api/local-agent.js'
import { DB_DIR } from '../../constants.js'

export const card: Command = {
  spec: {
    name: 'card',
    args: '[<peer>]',
    details: [
      'The card is checked (signature, key ↔ PeerId, expiry) before it is shown; an invalid one exits 1.',
      'Its org claim is shown as "verified for <org>" only when the card carries a certificate from an',
      'organisation in config.json trust.orgs (molt org trust); otherwise "unverified" and why (protocols/identity.md).',
      'Revocations checked: those in org-revocations.json and every one the agent holds (received over gossip or',
      'trust-sync: from the running agent, or from its store when none runs).',
      'With --json prints the card as one JSON object, with the verdict in org_verdict { org, verified, code, reason }.',
      'Without <peer> it reads this agent\'s own card and needs an agent in the data dir (exit 1, E_AGENT_NOT_FOUND,',
      'otherwise); with <peer> it talks to the network as this agent, creating its identity if there is none (as molt init).'
    ].join('\n'),
    options: {
      refresh: { type: 'boolean', description: 'fetch the card again even when a cached one is still valid' },
      timeout: { type: 'string', arg: '<ms>', description: 'give up after this long (default: the card protocol\'s 10 s)' }
    }
  },

  async run ({ args, dataDir, out, signal }) {
    const peer = args.positionals.length > 0 ? peerPositional(args, this.spec) : undefined
    const force = booleanFlag(args.values, 'refresh')
    if (peer === undefined && force) throw new UsageError('--refresh needs a <peer> (see molt card --help)')
    const timeoutMs = integerFlag(stringFlag(args.values, 'timeout'), 'timeout', 1, 600_000)

    if (peer === undefined) await requireAgentHere(dataDir)
    // read before a node of our own opens the store
    const held = await heldRevocations(dataDir, signal)
    const network = await openNetwork(dataDir, signal)
    try {
      const result = await network.card(peer, { force, timeoutMs })
      const { trust } = await loadConfig(dataDir)
      const verdict = verifyOrgClaim(result, result.org, { roots: trust.orgs, revocations: [...await loadRevocations(dataDir), ...held] })
      out.result([...formatCard(result), `Org       ${verdict.reason}`], { ...result, org_verdict: verdict })
    } finally {
      await network.close()
    }
  }
}

/** The revocations the agent holds beyond org-revocations.json: the running agent's (API), else those in its store */
async function heldRevocations (dataDir: string, signal: AbortSignal): Promise<readonly OrgRevocation[]> {
  const running = await connectToRunningAgent(dataDir, { signal })
  if (running != null) return (await running.client.trust<{ revocations: OrgRevocation[] }>('GET', '/org-revocations', undefined, { signal })).revocations
  // no agent runs: a node of our own follows anyway, so LevelDB is loaded now rather than later
  const { openDatabase } = await import('../../storage/index.js')
  const { storedOrgRevocations } = await import('../../services/trust/org-revocations.js')
  const db = await openDatabase(join(dataDir, DB_DIR))
  try {
    return await storedOrgRevocations(db)
  } finally {
    await db.close()
  }
}
