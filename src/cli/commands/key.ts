import { connectToRunningAgent } from '../../api/local-agent.js'
import { rotateKeyFiles, ROTATION_GRACE_PERIOD, type KeyRotation } from '../../identity/rotation/index.js'
import { UsageError } from '../errors.js'
import type { Command } from '../command.js'

interface Rotated {
  rotation: KeyRotation
  oldPeerId: string
  newPeerId: string
  refusedFrom: number
  retiredKeyPath: string
}

/** `molt key rotate`: a thin layer over node.rotateKey() (running agent) or rotateKeyFiles() (none runs) */
export const key: Command = {
  spec: {
    name: 'key',
    args: 'rotate',
    details: [
      'molt key rotate   replace this agent\'s key (protocols/identity.md, "Key rotation"):',
      '      a new key is made and "old → new" is signed with both keys. When an agent runs with this data dir',
      '      it publishes the statement at once (molt/key-rotation/1 and trust-sync); otherwise the agent publishes',
      '      it at its next start. The data dir switches to the new key; the agent becomes the new PeerId when it',
      '      (re)starts. The old key is kept in <data-dir>/retired-keys/ (0600) and refused by peers',
      `      ${ROTATION_GRACE_PERIOD / 86_400_000} days after the rotation. Peers that hold the statement keep the agent's trust score.`,
      '',
      'Exit codes: 0 rotated; 1 not rotated (no key, a rotation not yet taken up by a restart, the agent\'s API failed); 2 bad command line.'
    ].join('\n'),
    options: {}
  },

  async run ({ args, dataDir, out, signal }) {
    const [sub, ...rest] = args.positionals
    if (sub !== 'rotate') throw new UsageError(sub === undefined ? 'molt key needs a subcommand: rotate (see molt key --help)' : `unknown subcommand "${sub}" (see molt key --help)`)
    if (rest.length > 0) throw new UsageError('molt key rotate takes no arguments')
    const running = await connectToRunningAgent(dataDir, { signal })
    const result: Rotated = running != null
      ? await running.client.key<Rotated>('POST', '/rotate', {}, { signal })
      : await rotateKeyFiles(dataDir)
    const { rotation, oldPeerId, newPeerId, refusedFrom, retiredKeyPath } = result
    const published = running != null
    out.result([
      `Rotated     ${oldPeerId} → ${newPeerId} (seq ${rotation.seq})`,
      published ? 'Published   by the running agent; restart it to switch to the new key' : 'Published   at the agent\'s next start (no agent runs now)',
      `Old key     kept in ${retiredKeyPath} until peers refuse it at ${new Date(refusedFrom).toISOString()}`
    ], { rotation, oldPeerId, newPeerId, refusedFrom, retiredKeyPath, published, restartRequired: published })
  }
}
