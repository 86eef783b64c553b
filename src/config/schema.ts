import * as z from 'zod'
import { DEFAULT_API_PORT, DEFAULT_LISTEN } from '../constants.js'
import { MAX_NAME_LENGTH, MOLT_KEY_PATTERN, NAME_PATTERN } from '../moltspeak/constants.js'
import { LOG_FORMATS, LOG_LEVELS } from '../logging/levels.js'
import { DEFAULT_LOG_FORMAT, DEFAULT_LOG_LEVEL } from '../logging/constants.js'
import type { MailboxLimitsInit } from '../services/mailbox/limits.js'
import { RELAY_DRAIN_TIMEOUT_BOUNDS, RELAY_LIMIT_BOUNDS, type RelayLimitName, type RelayLimitsInit } from './relay-limits.js'

/*
 * The schema of config.json. Every field is optional on disk; parsing fills
 * the defaults, and the TypeScript types (MoltConfig, ...) are inferred from
 * it. Each field carries the one sentence a ConfigError says about it
 * ("<file>: <field> <why>"). Unknown fields are ignored (a newer molt's file
 * still loads).
 */

/** Entries of `trust.orgs` a config may hold */
export const MAX_TRUSTED_ORGS = 256

/** One message for every way `schema` can fail: the field's rule in words */
const why = (message: string): { error: string } => ({ error: message })

const object = <S extends z.ZodRawShape>(shape: S): z.ZodObject<S> => z.object(shape, why('must be an object'))

const boolean = (): z.ZodBoolean => z.boolean(why('must be true or false'))

const nameRule = `must be 1-${MAX_NAME_LENGTH} characters of [A-Za-z0-9_-]`
const name = (): z.ZodString => z.string(why(nameRule)).max(MAX_NAME_LENGTH, why(nameRule)).regex(NAME_PATTERN, why(nameRule))

const multiaddrs = (rule: string, peer: boolean): z.ZodArray<z.ZodString> => {
  const item = z.string(why(rule)).startsWith('/', why(rule))
  return z.array(peer ? item.includes('/p2p/', why(rule)) : item, why(rule))
}

const integer = (min: number, max: number, rule: string): z.ZodNumber =>
  z.number(why(rule)).int(why(rule)).min(min, why(rule)).max(max, why(rule))

const capabilitiesRule = 'must be an array of capability names'

const agentSchema = object({
  /** `from.agent` in every message. @default the data dir's name, else 'agent' */
  name: name().default('agent'),
  /** `from.org`; same rules as name. @default 'local' */
  org: name().default('local'),
  description: z.string(why('must be a string')).optional(),
  /** MoltSpeak capability names this agent offers, e.g. `translate.text` */
  capabilities: z.array(z.string(why(capabilitiesRule)).min(1, why(capabilitiesRule)), why(capabilitiesRule)).default(() => [])
})

const relayLimitShape = Object.fromEntries(Object.entries(RELAY_LIMIT_BOUNDS).map(([field, { min, max }]) =>
  [field, integer(min, max, `must be a whole number between ${min} and ${max}`).optional()])) as Record<RelayLimitName, z.ZodOptional<z.ZodNumber>>

/** Fields of `relay.mailbox` that are counts or sizes (whole numbers ≥ 1) */
const MAILBOX_INTEGER_FIELDS = [
  'maxMessagesPerRecipient', 'maxBytesPerRecipient', 'maxTotalMessages', 'maxTotalBytes',
  'retentionMs', 'senderRate', 'senderBurst', 'maxBoxBytes',
  'firstContactRetentionMs', 'sourceRate', 'sourceBurst', 'maxRegistrations', 'maxRegistrationsPerSource'
] as const satisfies ReadonlyArray<keyof MailboxLimitsInit>

/** Fields of `relay.mailbox` that are shares, in (0, 1] */
const MAILBOX_SHARE_FIELDS = ['maxSenderShare', 'maxSourceShare', 'maxSourceTotalShare', 'firstContactShare'] as const satisfies ReadonlyArray<keyof MailboxLimitsInit>

const mailboxSchema = z.object({
  ...Object.fromEntries(MAILBOX_INTEGER_FIELDS.map(field => [field, integer(1, Number.MAX_SAFE_INTEGER, 'must be a whole number ≥ 1').optional()])),
  ...Object.fromEntries(MAILBOX_SHARE_FIELDS.map(field => [field, z.number(why('must be a number in (0, 1]')).gt(0, why('must be a number in (0, 1]')).max(1, why('must be a number in (0, 1]')).optional()]))
} as Record<keyof MailboxLimitsInit, z.ZodOptional<z.ZodNumber>>, why('must be false or an object of mailbox limits'))

const relaySchema = object({
  /** Multiaddrs the relay listens on. @default ['/ip4/0.0.0.0/tcp/4001', '/ip4/0.0.0.0/tcp/4002/ws'] */
  listen: multiaddrs('must be an array of multiaddr strings', false).optional(),
  ...relayLimitShape,
  /** How long `molt relay` waits for relayed connections to finish on SIGINT/SIGTERM, in ms; 0 = stop at once. @default 5000 */
  drainTimeoutMs: integer(RELAY_DRAIN_TIMEOUT_BOUNDS.min, RELAY_DRAIN_TIMEOUT_BOUNDS.max, `must be a whole number of ms between ${RELAY_DRAIN_TIMEOUT_BOUNDS.min} and ${RELAY_DRAIN_TIMEOUT_BOUNDS.max}`).optional(),
  /** The store-and-forward mailbox: its limits (protocols/mailbox.md), or false to run without. @default enabled */
  mailbox: z.union([z.literal(false), mailboxSchema]).optional()
})

const orgsRule = `must be an array of at most ${MAX_TRUSTED_ORGS} { "name": <org name>, "key": "ed25519:<base64>" }`

const trustSchema = object({
  /** PeerIds this agent trusts from the start: the roots of its EigenTrust view (protocols/trust.md) */
  preTrusted: z.array(z.string(why('must be an array of PeerIds')).regex(/^[1-9A-HJ-NP-Za-km-z]{40,100}$/, why('must be an array of PeerIds')), why('must be an array of PeerIds')).default(() => []),
  /** Inbox policy: messages from agents scoring below `threshold` are held or refused (E_AUTH_FAILED) */
  inbox: object({
    threshold: z.number(why('must be a number 0..1')).min(0, why('must be a number 0..1')).max(1, why('must be a number 0..1')),
    action: z.enum(['hold', 'refuse'], why('must be hold or refuse')),
    domain: z.string(why('must be a string')).optional()
  }).optional(),
  /** Organisations whose certificates this agent accepts (protocols/identity.md) */
  orgs: z.array(z.object({
    name: z.string(why(orgsRule)).max(MAX_NAME_LENGTH, why(orgsRule)).regex(NAME_PATTERN, why(orgsRule)),
    key: z.string(why(orgsRule)).regex(MOLT_KEY_PATTERN, why(orgsRule))
  }, why(orgsRule)), why(orgsRule)).max(MAX_TRUSTED_ORGS, why(orgsRule)).default(() => []),
  /**
   * What happens to messages from an agent whose certificate a trusted organisation revoked:
   * `flag` (accepted, `org_verified: false`) or `refuse` (E_AUTH_FAILED; mailbox and topic messages dropped).
   * Judged on the sender's cached card (protocols/identity.md, "Refusing revoked agents"). @default 'flag'
   */
  revokedAgents: z.enum(['flag', 'refuse'], why('must be flag or refuse')).default('flag')
})

/** config.json as a schema: what each field may hold, and its default */
export const configSchema = z.object({
  agent: agentSchema.prefault({}),
  /** Multiaddrs to listen on. @default DEFAULT_LISTEN */
  listen: multiaddrs('must be an array of multiaddr strings', false).default(() => [...DEFAULT_LISTEN]),
  api: object({
    /** Local API port on 127.0.0.1; 0 picks a free one */
    port: integer(0, 65535, 'must be an integer 0-65535').default(DEFAULT_API_PORT)
  }).prefault({}),
  speak: object({
    /** Refuse unsigned messages (E_SIGNATURE) */
    requireSignatures: boolean().default(false)
  }).prefault({}),
  /** Circuit relays this agent stays reachable through. No built-in list */
  relays: multiaddrs('must be an array of multiaddrs ending in /p2p/<relay PeerId>', true).default(() => []),
  discovery: object({
    /** `molt agent` finds LAN peers by mDNS (`--no-mdns` turns it off) */
    mdns: boolean().default(true),
    /** DHT bootstrap multiaddrs (with /p2p/<id>); no built-in list */
    bootstrap: multiaddrs('must be an array of multiaddrs ending in /p2p/<PeerId>', true).default(() => []),
    /** Run the DHT as a client only (agents behind NAT) */
    dhtClient: boolean().default(false),
    /** Reserve on relays met on the LAN/DHT too, not only configured ones (agents behind NAT) */
    discoverRelays: boolean().default(false)
  }).prefault({}),
  /** `molt relay` settings; absent unless written (`molt relay --init`). Unset fields take the relay defaults */
  relay: relaySchema.optional(),
  trust: trustSchema.prefault({}),
  /** Event lines of `molt agent` and `molt relay` (`--log-level`, `--log-format` override) */
  log: object({
    level: z.enum(LOG_LEVELS, why(`must be one of ${LOG_LEVELS.join(', ')}`)).default(DEFAULT_LOG_LEVEL),
    format: z.enum(LOG_FORMATS, why(`must be one of ${LOG_FORMATS.join(', ')}`)).default(DEFAULT_LOG_FORMAT)
  }).prefault({})
}, why('expected a JSON object'))

/** The data dir's config.json with every default filled in */
export type MoltConfig = z.output<typeof configSchema>

/** The agent's self-description: display data, never authority */
export type AgentProfile = MoltConfig['agent']

/** config.json `relay`: what `molt relay` listens on and the limits it applies (protocols/relay.md) */
export type RelayConfig = NonNullable<MoltConfig['relay']>

// the inferred sections are the types the relay and mailbox take
const relayLimitsFit: RelayLimitsInit = {} as Omit<RelayConfig, 'listen' | 'mailbox'>
const mailboxLimitsFit: MailboxLimitsInit = {} as Exclude<RelayConfig['mailbox'], false | undefined>
void relayLimitsFit
void mailboxLimitsFit

/** The first problem of `error` as [field, what is wrong]: `field` names the config entry (`trust.orgs`), `at` the exact place (`trust.orgs[2].key`) */
export function describeIssue (error: z.ZodError): { field: string, at: string, why: string } {
  let issue: z.core.$ZodIssue = error.issues[0]
  let path: PropertyKey[] = [...issue.path]
  // a union (relay.mailbox: false or limits): the branch that got furthest says what is wrong
  while (issue.code === 'invalid_union' && issue.errors.length > 0) {
    const branches = issue.errors.map(issues => issues[0]).filter(i => i !== undefined)
    const deepest = branches.reduce((best, i) => i.path.length >= best.path.length ? i : best)
    path = [...path, ...deepest.path]
    issue = deepest
  }
  const firstIndex = path.findIndex(p => typeof p === 'number')
  const field = (firstIndex < 0 ? path : path.slice(0, firstIndex)).join('.')
  const at = path.map((p, i) => typeof p === 'number' ? `[${p}]` : `${i === 0 ? '' : '.'}${String(p)}`).join('')
  return { field, at, why: issue.message }
}
