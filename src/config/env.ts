import { ConfigError } from '../errors.js'
import { LOG_FORMAT_ENV, LOG_LEVEL_ENV } from '../logging/constants.js'
import { parseConfig, type MoltConfig } from './config.js'

/** How one MOLT_* variable maps onto config.json */
export interface EnvVariable {
  name: string
  /** The config.json field it overrides, e.g. `api.port` */
  field: string
  kind: 'string' | 'list' | 'integer' | 'boolean'
  description: string
}

/**
 * The documented MOLT_* overrides. Precedence: command-line flags > these >
 * config.json > defaults. An empty variable counts as unset. Lists are
 * comma-separated; booleans are `true` or `false`.
 */
export const ENV_VARIABLES: readonly EnvVariable[] = [
  { name: 'MOLT_AGENT_NAME', field: 'agent.name', kind: 'string', description: 'agent name (from.agent)' },
  { name: 'MOLT_AGENT_ORG', field: 'agent.org', kind: 'string', description: 'agent org (from.org)' },
  { name: 'MOLT_LISTEN', field: 'listen', kind: 'list', description: 'listen multiaddrs, comma-separated' },
  { name: 'MOLT_API_PORT', field: 'api.port', kind: 'integer', description: 'local API port on 127.0.0.1 (0 = any free port)' },
  { name: 'MOLT_REQUIRE_SIGNATURES', field: 'speak.requireSignatures', kind: 'boolean', description: 'refuse unsigned messages (true/false)' },
  { name: 'MOLT_MDNS', field: 'discovery.mdns', kind: 'boolean', description: 'LAN discovery by mDNS (true/false)' },
  { name: 'MOLT_BOOTSTRAP', field: 'discovery.bootstrap', kind: 'list', description: 'DHT bootstrap multiaddrs with /p2p/<id>, comma-separated' },
  { name: 'MOLT_RELAYS', field: 'relays', kind: 'list', description: 'circuit relay multiaddrs with /p2p/<id>, comma-separated' },
  { name: LOG_LEVEL_ENV, field: 'log.level', kind: 'string', description: 'event lines of agent/relay: error, warn, info or debug' },
  { name: LOG_FORMAT_ENV, field: 'log.format', kind: 'string', description: 'event lines of agent/relay: pretty or json' }
]

/** The MOLT_* variables set (non-empty) in `env` */
export function envOverrides (env: NodeJS.ProcessEnv = process.env): string[] {
  return ENV_VARIABLES.filter(v => (env[v.name] ?? '').trim() !== '').map(v => v.name)
}

/**
 * `config` with every set MOLT_* variable applied (a new object; `config` is
 * left alone). Each value is validated by parseConfig, so a bad one throws a
 * ConfigError naming both the variable and the config field.
 */
export function applyEnv (config: MoltConfig, env: NodeJS.ProcessEnv = process.env): MoltConfig {
  const result: MoltConfig = structuredClone(config)
  for (const variable of ENV_VARIABLES) {
    const text = (env[variable.name] ?? '').trim()
    if (text === '') continue
    const value = convert(variable, text)
    const path = variable.field.split('.')
    // a one-field config object, checked by the same rules as config.json
    const raw: Record<string, unknown> = {}
    let cursor = raw
    for (const key of path.slice(0, -1)) cursor = (cursor[key] = {}) as Record<string, unknown>
    cursor[path[path.length - 1]] = value
    let parsed: MoltConfig
    try {
      parsed = parseConfig(raw, undefined, `environment variable ${variable.name}`)
    } catch (err) {
      if (err instanceof ConfigError) throw new ConfigError(err.message, err.field ?? variable.field)
      throw err
    }
    let from: any = parsed
    let to: any = result
    for (const key of path.slice(0, -1)) {
      from = from[key]
      to = to[key]
    }
    to[path[path.length - 1]] = from[path[path.length - 1]]
  }
  return result
}

/** The env text as the JSON type config.json holds; a malformed value is passed on for parseConfig to refuse */
function convert (variable: EnvVariable, text: string): unknown {
  switch (variable.kind) {
    case 'list': return text.split(',').map(s => s.trim()).filter(s => s !== '')
    case 'integer': return /^\d+$/.test(text) ? Number(text) : text
    case 'boolean': return text === 'true' ? true : text === 'false' ? false : text
    default: return text
  }
}
