import { createHash, sign, verify, type KeyObject } from 'node:crypto'
import { canonicalize, keyObjectToRawPublicKey, moltKeyToKeyObject, publicKeyToMoltKey, MAX_NAME_LENGTH, MOLT_KEY_PATTERN, NAME_PATTERN } from '../../moltspeak/index.js'
import { parseBounded } from './decode.js'
import type { OrgRoot } from './root.js'
import { InvalidCertificateError, RevocationSignatureError } from './errors.js'
import * as c from './constants.js'

/**
 * An organisation's signed statement "certificate `serial` is withdrawn from
 * `revoked` on" (protocols/identity.md, "Revocation"). It travels on its own
 * gossipsub topic and in trust-sync sessions (src/services/trust/org-revocations.ts).
 */
export interface OrgRevocation {
  v: 1
  type: typeof c.REVOCATION_TYPE
  org: string
  /** `ed25519:<base64>` of the signing organisation key (informational, like a certificate's) */
  org_key: string
  /** The revoked certificate's serial */
  serial: string
  /** Unix ms from which the certificate is void */
  revoked: number
  /** ≤ 256 characters */
  reason?: string
  sig: string
}

const SIG_PATTERN = /^ed25519:[A-Za-z0-9+/]{86}==$/
const SERIAL_PATTERN = /^[0-9a-f]{32}$/
const FIELDS = ['v', 'type', 'org', 'org_key', 'serial', 'revoked', 'reason', 'sig']

/** Sign a revocation of certificate `serial` of `org` with the organisation key */
export function revokeCertificate (options: { org: string, serial: string, revoked?: number, reason?: string }, orgKey: KeyObject): OrgRevocation {
  const unsigned: Omit<OrgRevocation, 'sig'> = {
    v: 1,
    type: c.REVOCATION_TYPE,
    org: options.org,
    org_key: publicKeyToMoltKey(keyObjectToRawPublicKey(orgKey)),
    serial: options.serial,
    revoked: options.revoked ?? Date.now(),
    ...(options.reason !== undefined ? { reason: options.reason } : {})
  }
  const revocation = { ...unsigned, sig: 'ed25519:' + sign(null, Buffer.from(canonicalize(unsigned), 'utf8'), orgKey).toString('base64') }
  checkRevocation(revocation)
  return revocation
}

/** Decode with the certificate's bounds (size, depth) before parsing, then the structure */
export function decodeRevocation (text: string | Uint8Array): OrgRevocation {
  const value = parseBounded(text, 'revocation')
  checkRevocation(value)
  return value
}

/** @throws {InvalidCertificateError} */
export function checkRevocation (value: unknown): asserts value is OrgRevocation {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InvalidCertificateError('revocation must be a JSON object', 'revocation')
  const r = value as Record<string, unknown>
  for (const field of Object.keys(r)) if (!FIELDS.includes(field)) throw new InvalidCertificateError(`unknown field ${field}`, field)
  if (r.v !== 1) throw new InvalidCertificateError('v must be 1', 'v')
  if (r.type !== c.REVOCATION_TYPE) throw new InvalidCertificateError(`type must be ${c.REVOCATION_TYPE}`, 'type')
  const bad = (field: string, ok: boolean): void => { if (!ok) throw new InvalidCertificateError(`${field} is malformed`, field) }
  bad('org', typeof r.org === 'string' && r.org.length <= MAX_NAME_LENGTH && NAME_PATTERN.test(r.org))
  bad('org_key', typeof r.org_key === 'string' && MOLT_KEY_PATTERN.test(r.org_key))
  bad('serial', typeof r.serial === 'string' && SERIAL_PATTERN.test(r.serial))
  bad('revoked', typeof r.revoked === 'number' && Number.isSafeInteger(r.revoked) && r.revoked >= 0)
  bad('reason', r.reason === undefined || (typeof r.reason === 'string' && r.reason.length <= c.MAX_REVOCATION_REASON_LENGTH))
  bad('sig', typeof r.sig === 'string' && SIG_PATTERN.test(r.sig))
}

/**
 * Whether `revocation` is authentic: well formed and signed by a trusted root
 * of its org (never by the key it names itself). Never throws.
 */
export function verifyRevocation (revocation: unknown, roots: readonly OrgRoot[]): revocation is OrgRevocation {
  try {
    checkRevocation(revocation)
  } catch {
    return false
  }
  const { sig, ...unsigned } = revocation
  const bytes = Buffer.from(canonicalize(unsigned), 'utf8')
  const signature = Buffer.from(sig.slice('ed25519:'.length), 'base64')
  return roots.some(root => {
    if (root.name !== revocation.org) return false
    try {
      return verify(null, bytes, moltKeyToKeyObject(root.key), signature)
    } catch {
      return false
    }
  })
}

/** Its content address: hex SHA-256 of the canonical signed revocation (the trust-sync id) */
export function revocationId (revocation: OrgRevocation): string {
  return createHash('sha256').update(canonicalize(revocation)).digest('hex')
}

/**
 * Whether a well-formed revocation counts here (`trusted`: signed by a root
 * of its org in `roots`) or is only carried along (`untrusted`: its org is
 * not in `roots`, and it verifies under the key it names, so it is at least
 * what its author signed). Never trusted on its own `org_key`.
 *
 * @throws {RevocationSignatureError} its org is trusted but no root of that name signed it, or it does not verify under its own key
 */
export function classifyRevocation (revocation: OrgRevocation, roots: readonly OrgRoot[]): 'trusted' | 'untrusted' {
  // verifyRevocation is a type guard: called on `unknown` so a false does not narrow the revocation away
  const value: unknown = revocation
  if (roots.some(root => root.name === revocation.org)) {
    if (verifyRevocation(value, roots)) return 'trusted'
    throw new RevocationSignatureError(`the revocation of ${revocation.serial} is not signed by a trusted key of ${revocation.org}`)
  }
  if (verifyRevocation(value, [{ name: revocation.org, key: revocation.org_key }])) return 'untrusted'
  throw new RevocationSignatureError(`the revocation of ${revocation.serial} does not verify under its own org_key`)
}
