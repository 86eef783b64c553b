import { join } from 'node:path'
import { loadKey, identityFromKey } from '../../identity/index.js'
import { loadConfig } from '../../config/index.js'
import { applyEnv, envOverrides, ENV_VARIABLES } from '../../config/env.js'
import { CONFIG_FILE, IDENTITY_FILE } from '../../constants.js'
import { ConfigError } from '../../errors.js'
import { UsageError } from '../errors.js'
import type { Command } from '../command.js'

const SUBCOMMANDS = ['show', 'path'] as const

export const config: Command = {
  spec: {
    name: 'config',
    args: '<show|path>',
    details: [
      'molt config show   the configuration `molt agent` starts from: defaults, then <data-dir>/config.json,',
      '                   then MOLT_* environment variables (command-line flags override all of these)',
      'molt config path   the config file path',
      '',
      'Environment overrides (empty = unset; lists comma-separated; booleans true/false):',
      ...ENV_VARIABLES.map(v => `  ${v.name.padEnd(24)}${v.field.padEnd(25)}${v.description}`),
      '',
      'An invalid config file or variable exits 1 with a message naming the field (and the variable).'
    ].join('\n'),
    options: {}
  },

  async run ({ args, dataDir, out }) {
    const [sub, ...extra] = args.positionals
    if (sub === undefined) throw new UsageError('molt config needs a subcommand: show or path (see molt config --help)')
    if (!(SUBCOMMANDS as readonly string[]).includes(sub)) throw new UsageError(`unknown subcommand "${sub}" (see molt config --help)`)
    if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}" (see molt config --help)`)
    const path = join(dataDir, CONFIG_FILE)
    if (sub === 'path') {
      out.result(path, { path })
      return 0
    }

    // the same fallback agent name a node started on this data dir would use
    let fallbackName: string | undefined
    try {
      const key = await loadKey(join(dataDir, IDENTITY_FILE))
      if (key != null) fallbackName = `agent-${identityFromKey(key).peerId.toString().slice(-8)}`
    } catch {
      // an unreadable key is `molt id`'s business; the config is still worth showing
    }
    let effective
    try {
      effective = applyEnv(await loadConfig(dataDir, fallbackName), process.env)
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err
      out.error('E_INVALID_PARAM', err.message)
      return 1
    }
    const env = envOverrides(process.env)
    out.result([
      `# ${path}${env.length > 0 ? ` with ${env.join(', ')}` : ''}`,
      JSON.stringify(effective, null, 2)
    ], { dataDir, path, env, config: effective })
    return 0
  }
}
