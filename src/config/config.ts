import { readFile, writeFile, mkdir, rename } from 'node:fs/promises'
import { join } from 'node:path'
import { ConfigError } from '../errors.js'
import { CONFIG_FILE } from '../constants.js'
import { parseBoundedJson } from '../json/index.js'
import { configSchema, describeIssue, type MoltConfig } from './schema.js'

export type { AgentProfile, MoltConfig, RelayConfig } from './schema.js'

/** Every default, with the agent named `agentName` */
export function defaultConfig (agentName = 'agent'): MoltConfig {
  return parseConfig({}, agentName)
}

/** Read `<dataDir>/config.json`, filling defaults; a missing file means all defaults */
export async function loadConfig (dataDir: string, fallbackName?: string): Promise<MoltConfig> {
  const path = join(dataDir, CONFIG_FILE)
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err: any) {
    if (err.code === 'ENOENT') return defaultConfig(fallbackName)
    throw new ConfigError(`Cannot read ${path}: ${err.message}`)
  }
  let raw: unknown
  try {
    raw = parseBoundedJson(text)
  } catch (err: any) {
    throw new ConfigError(`${path} is not valid JSON: ${err.message}`)
  }
  return parseConfig(raw, fallbackName, path)
}

export async function saveConfig (dataDir: string, config: MoltConfig): Promise<void> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 })
  await writeFile(join(dataDir, CONFIG_FILE), JSON.stringify(config, null, 2) + '\n', { mode: 0o600 })
}

/**
 * Change some fields of `<dataDir>/config.json` and keep the rest as written:
 * `edit` gets the file's JSON object ({} when there is no file) and changes
 * it in place, returning false when there is nothing to write. The result is
 * checked by parseConfig before it is written, and written whole then
 * renamed, so a reader never sees half a file.
 */
export async function updateConfigFile (dataDir: string, edit: (raw: Record<string, unknown>) => boolean | void): Promise<void> {
  const path = join(dataDir, CONFIG_FILE)
  let raw: unknown = {}
  try {
    raw = JSON.parse(await readFile(path, 'utf8'))
  } catch (err: any) {
    if (err.code !== 'ENOENT') throw new ConfigError(`Cannot update ${path}: ${err.message}`)
  }
  if (!isObject(raw)) throw new ConfigError(`${path}: expected a JSON object`)
  if (edit(raw) === false) return
  parseConfig(raw, undefined, path)
  await mkdir(dataDir, { recursive: true, mode: 0o700 })
  const tmp = `${path}.${process.pid}.tmp`
  await writeFile(tmp, JSON.stringify(raw, null, 2) + '\n', { mode: 0o600 })
  await rename(tmp, path)
}

/** What `molt agent` keeps in config.json from one start for the next (see saveAgentSettings) */
export interface AgentSettings {
  /** The listen addresses with the ports picked at this start (config.json `listen` is replaced) */
  listen?: string[]
  /** --relay values (added to config.json `relays`) */
  relays?: string[]
  /** --bootstrap values (added to config.json `discovery.bootstrap`) */
  bootstrap?: string[]
}

/**
 * Record in config.json what this start chose, so a restart without flags
 * starts the same: listen ports, relays, bootstrap peers. Lists only grow
 * (values already there stay, in place). Returns what was written: fields
 * left out had nothing new.
 */
export async function saveAgentSettings (dataDir: string, settings: AgentSettings): Promise<AgentSettings> {
  const saved: AgentSettings = {}
  const added = (present: unknown, values: string[] | undefined): string[] => {
    const have = new Set(Array.isArray(present) ? present : [])
    return [...new Set(values ?? [])].filter(v => !have.has(v))
  }
  await updateConfigFile(dataDir, (raw) => {
    if (settings.listen != null && JSON.stringify(settings.listen) !== JSON.stringify(raw.listen)) raw.listen = saved.listen = settings.listen
    const relays = added(raw.relays, settings.relays)
    if (relays.length > 0) raw.relays = [...(Array.isArray(raw.relays) ? raw.relays : []), ...(saved.relays = relays)]
    const discovery = isObject(raw.discovery) ? raw.discovery : {}
    const bootstrap = added(discovery.bootstrap, settings.bootstrap)
    if (bootstrap.length > 0) {
      discovery.bootstrap = [...(Array.isArray(discovery.bootstrap) ? discovery.bootstrap : []), ...(saved.bootstrap = bootstrap)]
      raw.discovery = discovery
    }
    return Object.keys(saved).length > 0
  })
  return saved
}

/**
 * Validate a parsed config.json (configSchema) and fill the defaults. The
 * agent is named `fallbackName` unless the file names it.
 *
 * @throws {ConfigError} naming the file (`source`) and the field: `config.json: api.port must be an integer 0-65535`
 */
export function parseConfig (raw: unknown, fallbackName?: string, source = CONFIG_FILE): MoltConfig {
  const result = configSchema.safeParse(raw)
  if (!result.success) {
    const { field, at, why } = describeIssue(result.error)
    throw new ConfigError(field === '' ? `${source}: ${why}` : `${source}: ${at} ${why}`, field === '' ? undefined : field)
  }
  const config = result.data
  const named = isObject(raw) && isObject(raw.agent) && raw.agent.name !== undefined
  if (!named && fallbackName !== undefined) config.agent.name = fallbackName
  return config
}

function isObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
