import { randomBytes, sign, verify, type KeyObject } from 'node:crypto'
import { publicKeyFromRaw } from '@libp2p/crypto/keys'
import { peerIdFromPublicKey, peerIdFromString } from '@libp2p/peer-id'
import {
  canonicalize, moltKeyToKeyObject, moltKeyToRaw, keyObjectToRawPublicKey, publicKeyToMoltKey,
  MAX_NAME_LENGTH, MOLT_KEY_PATTERN, NAME_PATTERN
} from '../../moltspeak/index.js'
import { InvalidCertificateError } from './errors.js'
import * as c from './constants.js'
import { verifyRevocation, type OrgRevocation } from './revocation.js'
import { parseBounded } from './decode.js'
import type { OrgRoot } from './root.js'

export { parseBounded, tooDeep } from './decode.js'
export type { OrgRoot } from './root.js'

/**
 * An organisation's statement "the agent with this key is our agent `agent`,
 * allowed `capabilities`, from `issued` to `expires`", signed with the
 * organisation's Ed25519 key (protocols/identity.md)
 */
export interface OrgCertificate {
  v: 1
  type: typeof c.CERT_TYPE
  /** Organisation name (MoltSpeak name rules): what `from.org` and the card's `org` must say */
  org: string
  /** `ed25519:<base64>` of the organisation's public key (informational: verifiers use their own root) */
  org_key: string
  /** Agent name given by the organisation (MoltSpeak name rules) */
  agent: string
  /** `ed25519:<base64>` of the agent's public key: the key the certificate is bound to */
  agent_key: string
  /** PeerId of `agent_key` */
  peer_id: string
  /** Capability names the organisation vouches for (≤ 64, unique) */
  capabilities: string[]
  /** 32 hex characters, random: names this certificate (for revocation) */
  serial: string
  /** Unix ms */
  issued: number
  /** Unix ms; `expires - issued` ≤ MAX_CERT_VALIDITY */
  expires: number
  /** `ed25519:` + base64 of the organisation's signature over the canonical JSON without `sig` */
  sig: string
}

export interface IssueOptions {
  org: string
  agent: string
  /** The agent's PeerId (an Ed25519 PeerId embeds the key) */
  peerId: string
  capabilities?: string[]
  /** Unix ms. @default Date.now() */
  issued?: number
  /** Unix ms */
  expires: number
}

const SIG_PREFIX = 'ed25519:'
const SIG_PATTERN = /^ed25519:[A-Za-z0-9+/]{86}==$/
const SERIAL_PATTERN = /^[0-9a-f]{32}$/
const BASE58 = /^[1-9A-HJ-NP-Za-km-z]{40,128}$/
// capability names as MoltSpeak writes them: `translate.text`
const CAPABILITY_PATTERN = /^[A-Za-z0-9_.:-]+$/
const FIELDS = ['v', 'type', 'org', 'org_key', 'agent', 'agent_key', 'peer_id', 'capabilities', 'serial', 'issued', 'expires', 'sig']

/** The agent key (`ed25519:<base64>`) a PeerId embeds; only Ed25519 PeerIds have one */
export function moltKeyOfPeerId (peerId: string): string {
  let key: Uint8Array | undefined
  try {
    // an Ed25519 PeerId is the identity multihash of its public key
    key = peerIdFromString(peerId).publicKey?.raw
  } catch (err: any) {
    throw new InvalidCertificateError(`${peerId} is not a valid PeerId: ${err.message}`, 'peer_id')
  }
  if (key?.length !== 32) throw new InvalidCertificateError(`${peerId} is not an Ed25519 PeerId`, 'peer_id')
  return publicKeyToMoltKey(key)
}

/**
 * Sign a certificate with the organisation's key. The fields are checked with
 * the verifier's rules first, so what this returns is what a verifier accepts.
 *
 * @throws {InvalidCertificateError} a field is malformed or over its limit
 */
export function issueCertificate (options: IssueOptions, orgKey: KeyObject): OrgCertificate {
  const issued = options.issued ?? Date.now()
  const unsigned: Omit<OrgCertificate, 'sig'> = {
    v: 1,
    type: c.CERT_TYPE,
    org: options.org,
    org_key: publicKeyToMoltKey(keyObjectToRawPublicKey(orgKey)),
    agent: options.agent,
    agent_key: moltKeyOfPeerId(options.peerId),
    peer_id: options.peerId,
    capabilities: [...new Set(options.capabilities ?? [])],
    serial: randomBytes(16).toString('hex'),
    issued,
    expires: options.expires
  }
  const sig = SIG_PREFIX + sign(null, Buffer.from(canonicalize(unsigned), 'utf8'), orgKey).toString('base64')
  const cert = { ...unsigned, sig }
  checkCertificate(cert)
  return cert
}

/**
 * Decode a certificate from text or bytes: size and nesting are bounded on the
 * raw text before JSON.parse, then the structure is checked (not the
 * signature, which needs a trusted root: see verifyOrgClaim)
 *
 * @throws {InvalidCertificateError}
 */
export function decodeCertificate (input: string | Uint8Array): OrgCertificate {
  const value = parseBounded(input, 'certificate')
  checkCertificate(value)
  return value
}

/** Encode as canonical JSON (what is signed, plus `sig`): the form files and cards carry */
export function encodeCertificate (cert: OrgCertificate): string {
  return canonicalize(cert)
}

/**
 * Structure, types and limits of every field, and `peer_id` ↔ `agent_key`
 *
 * @throws {InvalidCertificateError}
 */
export function checkCertificate (value: unknown): asserts value is OrgCertificate {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InvalidCertificateError('certificate must be a JSON object', 'certificate')
  const cert = value as Record<string, unknown>
  for (const field of Object.keys(cert)) {
    if (!FIELDS.includes(field)) throw new InvalidCertificateError(`unknown field ${field}`, field)
  }
  if (cert.v !== 1) throw new InvalidCertificateError('v must be 1', 'v')
  if (cert.type !== c.CERT_TYPE) throw new InvalidCertificateError(`type must be ${c.CERT_TYPE}`, 'type')
  checkString(cert.org, 'org', MAX_NAME_LENGTH, NAME_PATTERN)
  checkString(cert.agent, 'agent', MAX_NAME_LENGTH, NAME_PATTERN)
  checkString(cert.org_key, 'org_key', 52, MOLT_KEY_PATTERN)
  checkString(cert.agent_key, 'agent_key', 52, MOLT_KEY_PATTERN)
  checkString(cert.peer_id, 'peer_id', 128, BASE58)
  checkString(cert.serial, 'serial', 32, SERIAL_PATTERN)
  checkString(cert.sig, 'sig', 96, SIG_PATTERN)
  if (!Array.isArray(cert.capabilities)) throw new InvalidCertificateError('capabilities must be an array', 'capabilities')
  if (cert.capabilities.length > c.MAX_CERT_CAPABILITIES) throw new InvalidCertificateError(`capabilities has more than ${c.MAX_CERT_CAPABILITIES} entries`, 'capabilities')
  for (const cap of cert.capabilities) checkString(cap, 'capabilities', c.MAX_CERT_CAPABILITY_LENGTH, CAPABILITY_PATTERN)
  if (new Set(cert.capabilities).size !== cert.capabilities.length) throw new InvalidCertificateError('capabilities repeats a name', 'capabilities')
  for (const field of ['issued', 'expires'] as const) {
    const time = cert[field]
    if (typeof time !== 'number' || !Number.isSafeInteger(time) || time < 0) throw new InvalidCertificateError(`${field} must be a non-negative integer (Unix ms)`, field)
  }
  const span = (cert.expires as number) - (cert.issued as number)
  if (span <= 0 || span > c.MAX_CERT_VALIDITY) throw new InvalidCertificateError(`expires - issued must be within (0, ${c.MAX_CERT_VALIDITY}] ms`, 'expires')
  let peerId: string
  try {
    peerId = peerIdFromPublicKey(publicKeyFromRaw(moltKeyToRaw(cert.agent_key as string))).toString()
  } catch (err: any) {
    throw new InvalidCertificateError(`agent_key is not a usable Ed25519 key: ${err.message}`, 'agent_key')
  }
  if (peerId !== cert.peer_id) throw new InvalidCertificateError(`agent_key belongs to ${peerId}, not to peer_id ${cert.peer_id as string}`, 'peer_id')
}

/** Why an org claim is or is not verified (protocols/identity.md, "Verification") */
export type OrgVerdictCode =
  | 'verified'
  | 'no_claim'
  | 'no_certificate'
  | 'invalid_certificate'
  | 'wrong_org_name'
  | 'unknown_org'
  | 'forged_signature'
  | 'wrong_agent_key'
  | 'revoked'
  | 'not_yet_valid'
  | 'expired'

export interface OrgVerdict {
  /** The org claimed (card `org` or `from.org`); '' when none */
  org: string
  verified: boolean
  code: OrgVerdictCode
  /** One line for people: `verified for acme` or why not */
  reason: string
  /** From a verified certificate only: the name and capabilities the org vouches for, and until when */
  agent?: string
  capabilities?: string[]
  expires?: number
  serial?: string
}

/** What verifyOrgClaim needs of a card (an AgentCard has all of it) */
export interface CertifiedSubject {
  /** `ed25519:<base64>` of the agent's key */
  key: string
  cert?: unknown
}

export interface VerifyOrgOptions {
  /** The organisations this verifier trusts (config `trust.orgs`) */
  roots: readonly OrgRoot[]
  /** Unix ms. @default Date.now() */
  now?: number
  /** Revocations known to this verifier; only those signed by a trusted root of the org count */
  revocations?: readonly unknown[]
}

/**
 * Whether `subject` (a verified card: its key is the agent's) is vouched for
 * by the organisation `org` it claims. Checks, in order: a claim, a
 * certificate, its structure, the org name, a trusted root of that name, the
 * signature by that root's key, revocations, the agent key, the validity period. Never
 * throws: the first failing check is the verdict.
 */
export function verifyOrgClaim (subject: CertifiedSubject, org: string | undefined, options: VerifyOrgOptions): OrgVerdict {
  const claim = org ?? ''
  const fail = (code: OrgVerdictCode, why: string): OrgVerdict => ({ org: claim, verified: false, code, reason: `org ${claim === '' ? '(none)' : claim} unverified: ${why}` })
  if (claim === '') return fail('no_claim', 'no org claimed')
  if (subject.cert === undefined) return fail('no_certificate', 'the agent carries no organisation certificate')
  try {
    checkCertificate(subject.cert)
  } catch (err: any) {
    return fail('invalid_certificate', `malformed certificate (${err.message as string})`)
  }
  const cert = subject.cert
  if (cert.org !== claim) return fail('wrong_org_name', `the certificate is for org ${cert.org}, not ${claim}`)
  const roots = options.roots.filter(root => root.name === claim)
  if (roots.length === 0) return fail('unknown_org', `org ${claim} is not a trusted organisation (trust.orgs)`)
  const { sig, ...unsigned } = cert
  const bytes = Buffer.from(canonicalize(unsigned), 'utf8')
  const signature = Buffer.from(sig.slice(SIG_PREFIX.length), 'base64')
  // the signature is checked with the trusted root's key, never with the certificate's own `org_key`
  if (!roots.some(root => verifySafely(bytes, root.key, signature))) {
    return fail('forged_signature', `the certificate is not signed by the trusted key of ${claim}`)
  }
  const now = options.now ?? Date.now()
  // cheap filters first: only a revocation of this serial, in effect, costs a signature check
  const revoked = options.revocations?.find(r => {
    const candidate = r as Partial<OrgRevocation> | null
    return candidate?.serial === cert.serial && typeof candidate.revoked === 'number' && candidate.revoked <= now && verifyRevocation(r, roots)
  }) as OrgRevocation | undefined
  if (revoked !== undefined) return fail('revoked', `the certificate was revoked by ${claim} from ${new Date(revoked.revoked).toISOString()}`)
  if (cert.agent_key !== subject.key) return fail('wrong_agent_key', `the certificate is for agent key ${cert.peer_id}, not this agent's`)
  if (cert.issued > now + c.MAX_CERT_CLOCK_SKEW) return fail('not_yet_valid', `the certificate is issued ${new Date(cert.issued).toISOString()}, in the future`)
  if (cert.expires <= now) return fail('expired', `the certificate expired ${new Date(cert.expires).toISOString()}`)
  return {
    org: claim,
    verified: true,
    code: 'verified',
    reason: `verified for ${claim}`,
    agent: cert.agent,
    capabilities: [...cert.capabilities],
    expires: cert.expires,
    serial: cert.serial
  }
}

function verifySafely (bytes: Uint8Array, key: string, signature: Uint8Array): boolean {
  try {
    return verify(null, bytes, moltKeyToKeyObject(key), signature)
  } catch {
    return false
  }
}

function checkString (value: unknown, field: string, maxLength: number, pattern: RegExp): void {
  if (typeof value !== 'string' || value.length === 0) throw new InvalidCertificateError(`${field} must be a non-empty string`, field)
  if (value.length > maxLength) throw new InvalidCertificateError(`${field} is longer than ${maxLength} characters`, field)
  if (!pattern.test(value)) throw new InvalidCertificateError(`${field} is malformed`, field)
}
