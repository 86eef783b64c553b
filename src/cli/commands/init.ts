import { join } from 'node:path'
import { loadOrCreateKey, identityFromKey } from '../../identity/index.js'
import { loadConfig, parseConfig, saveConfig } from '../../config/index.js'
import { IDENTITY_FILE } from '../../constants.js'
import { ConfigError } from '../../errors.js'
import { UsageError } from '../errors.js'
import { listFlag, noPositionals, stringFlag } from '../args.js'
import type { Command } from '../command.js'

export const init: Command = {
  spec: {
    name: 'init',
    options: {
      name: { type: 'string', arg: '<name>', description: 'agent name ([A-Za-z0-9_-], ≤ 128 chars)' },
      org: { type: 'string', arg: '<org>', description: 'organisation (same rules as the name)' },
      description: { type: 'string', arg: '<text>', description: 'free-text description of the agent' },
      capability: { type: 'string', multiple: true, arg: '<cap>', description: 'a capability this agent offers, e.g. translate.text; replaces the list' }
    }
  },

  async run ({ args, dataDir, out }) {
    noPositionals(args, this.spec)
    const { key, created } = await loadOrCreateKey(join(dataDir, IDENTITY_FILE))
    const identity = identityFromKey(key)
    const current = await loadConfig(dataDir, `agent-${identity.peerId.toString().slice(-8)}`)
    const v = args.values
    const agent = { ...current.agent }
    const name = stringFlag(v, 'name')
    const org = stringFlag(v, 'org')
    const description = stringFlag(v, 'description')
    const capabilities = listFlag(v, 'capability')
    if (name !== undefined) agent.name = name
    if (org !== undefined) agent.org = org
    if (description !== undefined) agent.description = description
    if (capabilities !== undefined) agent.capabilities = capabilities
    let config
    try {
      config = parseConfig({ ...current, agent })
    } catch (err) {
      // a bad --name/--org is a usage problem, not a broken config file
      if (err instanceof ConfigError) throw new UsageError(err.message.replace(/^config\.json: agent\./, '--'))
      throw err
    }
    await saveConfig(dataDir, config)
    const result = {
      peerId: identity.peerId.toString(),
      did: identity.did,
      key: identity.moltKey,
      created,
      dataDir,
      agent: config.agent
    }
    out.result([
      `${created ? 'Created' : 'Kept'} identity in ${dataDir}`,
      `PeerId  ${result.peerId}`,
      `DID     ${result.did}`,
      `Key     ${result.key}`,
      `Agent   ${config.agent.name}@${config.agent.org}`
    ], result)
  }
}
