import { access } from 'node:fs/promises'
import { join } from 'node:path'
import { IDENTITY_FILE } from '../constants.js'

/**
 * A command that reads this agent's own state (inbox, outbox, peers, its
 * card or identity) found no agent in the data dir. It creates nothing: the
 * user may have meant another data dir. Exit 1, JSON error code
 * E_AGENT_NOT_FOUND.
 */
export class NoAgentError extends Error {
  static override name = 'NoAgentError'
  override name = 'NoAgentError'
  readonly code = 'E_AGENT_NOT_FOUND'
}

/** Throws NoAgentError unless `dataDir` holds an identity key (written by `molt init` or the first `molt agent`) */
export async function requireAgentHere (dataDir: string): Promise<void> {
  try {
    await access(join(dataDir, IDENTITY_FILE))
  } catch {
    throw new NoAgentError(
      `no agent here: ${dataDir} has no identity. Start one with \`molt agent\` (or create its identity with \`molt init\`), ` +
      'or point at another agent\'s data dir with --data-dir or MOLT_HOME')
  }
}
