import { readFile, writeFile, mkdir, rename } from 'node:fs/promises'
import { join } from 'node:path'
import { ConfigError } from '../errors.js'
import type { RelayLimitsInit } from '../relay/limits.js'
import type { MailboxLimitsInit } from '../services/mailbox/limits.js'
import { CONFIG_FILE, DEFAULT_API_PORT, DEFAULT_LISTEN } from '../constants.js'
import { MAX_NAME_LENGTH, MOLT_KEY_PATTERN, NAME_PATTERN } from '../moltspeak/index.js'

/** Entries of `trust.orgs` a config may hold */
const MAX_TRUSTED_ORGS = 256
import { RELAY_LIMIT_BOUNDS, type RelayLimitName } from '../relay/constants.js'
import { DEFAULT_LOG_FORMAT, DEFAULT_LOG_LEVEL, LOG_FORMATS, LOG_LEVELS, isLogFormat, isLogLevel, type LogFormat, type LogLevel } from '../logging/levels.js'
import { parseBoundedJson } from '../json/index.js'

/** The agent's self-description: display data, never authority */
export interface AgentProfile {
  /** `from.agent` in every message; [A-Za-z0-9_-], ≤ 128 chars */
  name: string
  /** `from.org`; same rules as name. @default 'local' */
  org: string
  description?: string
  /** MoltSpeak capability names this agent offers, e.g. `translate.text` */
  capabilities: string[]
}

/** The data dir's config.json. Every field is optional on disk. */
export interface MoltConfig {
  agent: AgentProfile
  /** Multiaddrs to listen on. @default DEFAULT_LISTEN */
  listen: string[]
  api: {
    /** Local API port on 127.0.0.1; 0 picks a free one. @default 0 */
    port: number
  }
  speak: {
    /** Refuse unsigned messages (E_SIGNATURE). @default false */
    requireSignatures: boolean
  }
  /** Circuit relays this agent stays reachable through (multiaddrs with /p2p/<id>). @default [] */
  relays: string[]
  discovery: {
    /** `molt agent` finds LAN peers by mDNS (`--no-mdns` turns it off). @default true */
    mdns: boolean
    /** DHT bootstrap multiaddrs (with /p2p/<id>); no built-in list. @default [] */
    bootstrap: string[]
    /** Run the DHT as a client only (agents behind NAT). @default false */
    dhtClient: boolean
    /** Reserve on relays met on the LAN/DHT too, not only configured ones (agents behind NAT). @default false */
    discoverRelays: boolean
  }
  /** `molt relay` settings; absent unless written (`molt relay --init`). Unset fields take the relay defaults. */
  relay?: RelayConfig
  trust: {
    /** PeerIds this agent trusts from the start: the roots of its EigenTrust view (protocols/trust.md). @default [] */
    preTrusted: string[]
    /** Inbox policy: messages from agents scoring below `threshold` are held or refused (E_AUTH_FAILED). @default none */
    inbox?: { threshold: number, action: 'hold' | 'refuse', domain?: string }
    /** Organisations whose certificates this agent accepts: `{ name, key: 'ed25519:<base64>' }` (protocols/identity.md). @default [] */
    orgs: Array<{ name: string, key: string }>
  }
  /** Event lines of `molt agent` and `molt relay` (`--log-level`, `--log-format` override) */
  log: {
    /** error, warn, info or debug. @default 'info' */
    level: LogLevel
    /** pretty (human lines) or json (one JSON object per line). @default 'pretty' */
    format: LogFormat
  }
}

/** config.json `relay`: what `molt relay` listens on and the limits it applies (protocols/relay.md) */
export interface RelayConfig extends RelayLimitsInit {
  /** Multiaddrs the relay listens on. @default ['/ip4/0.0.0.0/tcp/4001', '/ip4/0.0.0.0/tcp/4002/ws'] */
  listen?: string[]
  /** The store-and-forward mailbox: its limits (protocols/mailbox.md), or false to run without. @default enabled */
  mailbox?: false | MailboxLimitsInit
}

export function defaultConfig (agentName = 'agent'): MoltConfig {
  return {
    agent: { name: agentName, org: 'local', capabilities: [] },
    listen: [...DEFAULT_LISTEN],
    api: { port: DEFAULT_API_PORT },
    speak: { requireSignatures: false },
    relays: [],
    discovery: { mdns: true, bootstrap: [], dhtClient: false, discoverRelays: false },
    trust: { preTrusted: [], orgs: [] },
    log: { level: DEFAULT_LOG_LEVEL, format: DEFAULT_LOG_FORMAT }
  }
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

/** Validate a parsed config object; errors name the offending field */
export function parseConfig (raw: unknown, fallbackName?: string, source = CONFIG_FILE): MoltConfig {
  const config = defaultConfig(fallbackName)
  if (!isObject(raw)) throw new ConfigError(`${source}: expected a JSON object`)
  const fail = (field: string, why: string): never => { throw new ConfigError(`${source}: ${field} ${why}`, field) }

  if (raw.agent !== undefined) {
    if (!isObject(raw.agent)) fail('agent', 'must be an object')
    const agent = raw.agent as Record<string, unknown>
    for (const field of ['name', 'org'] as const) {
      const value = agent[field]
      if (value === undefined) continue
      if (typeof value !== 'string' || !NAME_PATTERN.test(value) || value.length > MAX_NAME_LENGTH) {
        fail(`agent.${field}`, `must be 1-${MAX_NAME_LENGTH} characters of [A-Za-z0-9_-]`)
      }
      config.agent[field] = value as string
    }
    if (agent.description !== undefined) {
      if (typeof agent.description !== 'string') fail('agent.description', 'must be a string')
      config.agent.description = agent.description as string
    }
    if (agent.capabilities !== undefined) {
      if (!Array.isArray(agent.capabilities) || !agent.capabilities.every(c => typeof c === 'string' && c.length > 0)) {
        fail('agent.capabilities', 'must be an array of capability names')
      }
      config.agent.capabilities = agent.capabilities as string[]
    }
  }
  if (raw.listen !== undefined) {
    if (!Array.isArray(raw.listen) || !raw.listen.every(a => typeof a === 'string' && a.startsWith('/'))) {
      fail('listen', 'must be an array of multiaddr strings')
    }
    config.listen = raw.listen as string[]
  }
  if (raw.api !== undefined) {
    if (!isObject(raw.api)) fail('api', 'must be an object')
    const port = (raw.api as Record<string, unknown>).port
    if (port !== undefined) {
      if (!Number.isInteger(port) || (port as number) < 0 || (port as number) > 65535) fail('api.port', 'must be an integer 0-65535')
      config.api.port = port as number
    }
  }
  if (raw.speak !== undefined) {
    if (!isObject(raw.speak)) fail('speak', 'must be an object')
    const requireSignatures = (raw.speak as Record<string, unknown>).requireSignatures
    if (requireSignatures !== undefined) {
      if (typeof requireSignatures !== 'boolean') fail('speak.requireSignatures', 'must be true or false')
      config.speak.requireSignatures = requireSignatures as boolean
    }
  }
  if (raw.relays !== undefined) {
    if (!Array.isArray(raw.relays) || !raw.relays.every(a => typeof a === 'string' && a.startsWith('/') && a.includes('/p2p/'))) {
      fail('relays', 'must be an array of multiaddrs ending in /p2p/<relay PeerId>')
    }
    config.relays = raw.relays as string[]
  }
  if (raw.discovery !== undefined) {
    if (!isObject(raw.discovery)) fail('discovery', 'must be an object')
    const discovery = raw.discovery as Record<string, unknown>
    for (const field of ['mdns', 'dhtClient', 'discoverRelays'] as const) {
      if (discovery[field] === undefined) continue
      if (typeof discovery[field] !== 'boolean') fail(`discovery.${field}`, 'must be true or false')
      config.discovery[field] = discovery[field] as boolean
    }
    if (discovery.bootstrap !== undefined) {
      if (!Array.isArray(discovery.bootstrap) || !discovery.bootstrap.every(a => typeof a === 'string' && a.startsWith('/') && a.includes('/p2p/'))) {
        fail('discovery.bootstrap', 'must be an array of multiaddrs ending in /p2p/<PeerId>')
      }
      config.discovery.bootstrap = discovery.bootstrap as string[]
    }
  }
  if (raw.relay !== undefined) {
    if (!isObject(raw.relay)) fail('relay', 'must be an object')
    const relay = raw.relay as Record<string, unknown>
    const parsed: RelayConfig = {}
    if (relay.listen !== undefined) {
      if (!Array.isArray(relay.listen) || !relay.listen.every(a => typeof a === 'string' && a.startsWith('/'))) {
        fail('relay.listen', 'must be an array of multiaddr strings')
      }
      parsed.listen = relay.listen as string[]
    }
    for (const field of Object.keys(RELAY_LIMIT_BOUNDS) as RelayLimitName[]) {
      const value = relay[field]
      if (value === undefined) continue
      const { min, max } = RELAY_LIMIT_BOUNDS[field]
      if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
        fail(`relay.${field}`, `must be a whole number between ${min} and ${max}`)
      }
      parsed[field] = value as number
    }
    if (relay.mailbox !== undefined) parsed.mailbox = parseMailboxConfig(relay.mailbox, fail)
    config.relay = parsed
  }
  if (raw.trust !== undefined) {
    if (!isObject(raw.trust)) fail('trust', 'must be an object')
    const trust = raw.trust as Record<string, unknown>
    if (trust.preTrusted !== undefined) {
      if (!Array.isArray(trust.preTrusted) || !trust.preTrusted.every(p => typeof p === 'string' && /^[1-9A-HJ-NP-Za-km-z]{40,100}$/.test(p))) {
        fail('trust.preTrusted', 'must be an array of PeerIds')
      }
      config.trust.preTrusted = trust.preTrusted as string[]
    }
    if (trust.inbox !== undefined) {
      const inbox = trust.inbox as Record<string, unknown>
      if (!isObject(inbox)) fail('trust.inbox', 'must be an object')
      if (typeof inbox.threshold !== 'number' || inbox.threshold < 0 || inbox.threshold > 1) fail('trust.inbox.threshold', 'must be a number 0..1')
      if (inbox.action !== 'hold' && inbox.action !== 'refuse') fail('trust.inbox.action', 'must be hold or refuse')
      if (inbox.domain !== undefined && typeof inbox.domain !== 'string') fail('trust.inbox.domain', 'must be a string')
      config.trust.inbox = { threshold: inbox.threshold as number, action: inbox.action as 'hold' | 'refuse', ...(inbox.domain !== undefined ? { domain: inbox.domain as string } : {}) }
    }
  }
  if (isObject(raw.trust) && raw.trust.orgs !== undefined) {
    const orgs = raw.trust.orgs
    const valid = Array.isArray(orgs) && orgs.length <= MAX_TRUSTED_ORGS && orgs.every(o =>
      isObject(o) && typeof o.name === 'string' && NAME_PATTERN.test(o.name) && o.name.length <= MAX_NAME_LENGTH &&
      typeof o.key === 'string' && MOLT_KEY_PATTERN.test(o.key))
    if (!valid) fail('trust.orgs', `must be an array of at most ${MAX_TRUSTED_ORGS} { "name": <org name>, "key": "ed25519:<base64>" }`)
    config.trust.orgs = (orgs as Array<{ name: string, key: string }>).map(({ name, key }) => ({ name, key }))
  }
  if (raw.log !== undefined) {
    if (!isObject(raw.log)) fail('log', 'must be an object')
    const log = raw.log as Record<string, unknown>
    if (log.level !== undefined) {
      if (!isLogLevel(log.level)) fail('log.level', `must be one of ${LOG_LEVELS.join(', ')}`)
      config.log.level = log.level as LogLevel
    }
    if (log.format !== undefined) {
      if (!isLogFormat(log.format)) fail('log.format', `must be one of ${LOG_FORMATS.join(', ')}`)
      config.log.format = log.format as LogFormat
    }
  }
  return config
}

function isObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** Fields of config.json `relay.mailbox` that are counts or sizes (whole numbers ≥ 1) */
const MAILBOX_INTEGER_FIELDS = [
  'maxMessagesPerRecipient', 'maxBytesPerRecipient', 'maxTotalMessages', 'maxTotalBytes',
  'retentionMs', 'senderRate', 'senderBurst', 'maxBoxBytes',
  'firstContactRetentionMs', 'sourceRate', 'sourceBurst', 'maxRegistrations', 'maxRegistrationsPerSource'
] as const

/** Fields of config.json `relay.mailbox` that are shares, in (0, 1] */
const MAILBOX_SHARE_FIELDS = ['maxSenderShare', 'maxSourceShare', 'maxSourceTotalShare', 'firstContactShare'] as const

function parseMailboxConfig (raw: unknown, fail: (field: string, why: string) => never): false | MailboxLimitsInit {
  if (raw === false) return false
  if (!isObject(raw)) fail('relay.mailbox', 'must be false or an object of mailbox limits')
  const mailbox = raw as Record<string, unknown>
  const parsed: Record<string, number> = {}
  for (const field of MAILBOX_INTEGER_FIELDS) {
    const value = mailbox[field]
    if (value === undefined) continue
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) fail(`relay.mailbox.${field}`, 'must be a whole number ≥ 1')
    parsed[field] = value as number
  }
  for (const field of MAILBOX_SHARE_FIELDS) {
    const share = mailbox[field]
    if (share === undefined) continue
    if (typeof share !== 'number' || !(share > 0 && share <= 1)) fail(`relay.mailbox.${field}`, 'must be a number in (0, 1]')
    parsed[field] = share as number
  }
  return parsed
}
