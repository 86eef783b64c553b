import { peerIdFromString } from '@libp2p/peer-id'
import type { MoltNode } from '../node.js'
import { HttpError } from './errors.js'
import { invalid, queryInteger, queryString, requireObject } from './validate.js'
import type { Method, Route, RouteContext } from './route.js'
import { ATTESTATION_TYPES, type AttestInput } from '../services/trust/index.js'

const MAX_PEER_LENGTH = 128
const MAX_LIST = 1000
/** Record errors a client can cause: answered 400 with the record's field, or E_SIGNATURE */
const RECORD_ERRORS: Record<string, 'E_INVALID_PARAM' | 'E_SIGNATURE' | 'E_TIMEOUT'> = {
  InvalidAttestationError: 'E_INVALID_PARAM',
  AttestationSignatureError: 'E_SIGNATURE',
  AttestationExpiredError: 'E_TIMEOUT',
  AttestationFutureError: 'E_INVALID_PARAM',
  SelfAttestationError: 'E_INVALID_PARAM',
  AttestationTooLargeError: 'E_INVALID_PARAM',
  RevocationMismatchError: 'E_INVALID_PARAM',
  InvalidParametersError: 'E_INVALID_PARAM',
  InvalidCertificateError: 'E_INVALID_PARAM',
  RevocationSignatureError: 'E_SIGNATURE'
}

/**
 * GET /v1/trust/{peer} (score), GET|POST /v1/trust/attestations,
 * POST /v1/trust/revocations (protocols/api.md, "Trust"),
 * GET|POST /v1/trust/org-revocations (protocols/identity.md, "Revocation propagation")
 */
export function trustRoutes (node: MoltNode): Array<[string, Partial<Record<Method, Route>>]> {
  const score = async ({ url }: RouteContext): Promise<unknown> => {
    const peer = peerParam(decodeURIComponent(url.pathname.slice('/v1/trust/'.length)), 'peer')
    const domain = queryString(url.searchParams, 'domain', 128)
    return node.trust.score(peer, domain !== undefined ? { domain } : {})
  }

  const list = async ({ url }: RouteContext): Promise<unknown> => {
    const subject = queryString(url.searchParams, 'subject', MAX_PEER_LENGTH)
    const issuer = queryString(url.searchParams, 'issuer', MAX_PEER_LENGTH)
    const limit = queryInteger(url.searchParams, 'limit', 100, 1, MAX_LIST)
    const attestations = await node.trust.list({
      ...(subject !== undefined ? { subject: peerParam(subject, 'subject') } : {}),
      ...(issuer !== undefined ? { issuer: peerParam(issuer, 'issuer') } : {}),
      limit
    })
    return { attestations }
  }

  const create = async ({ body }: RouteContext): Promise<unknown> => {
    const fields = requireObject(body, ['attestation', 'subject', 'type', 'domain', 'strength', 'severity', 'outcome', 'rating', 'taskId', 'taskType', 'context', 'validityMs'])
    return mapErrors(async () => {
      if (fields.attestation !== undefined) return node.trust.submit(fields.attestation)
      if (typeof fields.type !== 'string' || !ATTESTATION_TYPES.includes(fields.type as any) || fields.type === 'revocation') {
        throw invalid('type', 'must be endorsement, task_completion, warning or incident_report')
      }
      const input: AttestInput = {
        subject: peerParam(fields.subject, 'subject'),
        type: fields.type as AttestInput['type'],
        ...pick(fields, ['domain', 'strength', 'severity', 'outcome', 'rating', 'taskId', 'taskType', 'context']),
        ...(fields.validityMs !== undefined ? { validity: Number(fields.validityMs) } : {})
      }
      const attestation = await node.trust.attest(input)
      return node.trust.get(attestation.id)
    })
  }

  const revoke = async ({ body }: RouteContext): Promise<unknown> => {
    const fields = requireObject(body, ['id', 'reason'])
    if (typeof fields.id !== 'string') throw invalid('id', 'must be an attestation id')
    return mapErrors(async () => ({ revocation: await node.trust.revoke(fields.id as string, typeof fields.reason === 'string' ? fields.reason : undefined) }))
  }

  const orgRevoke = async ({ body }: RouteContext): Promise<unknown> => {
    const fields = requireObject(body, ['revocation'])
    return mapErrors(async () => node.trust.publishOrgRevocation(fields.revocation))
  }

  return [
    ['/v1/trust/org-revocations', { GET: { handler: async () => ({ revocations: node.trust.orgRevocations() }) }, POST: { handler: orgRevoke } }],
    ['/v1/trust/attestations', { GET: { handler: list }, POST: { handler: create } }],
    ['/v1/trust/revocations', { POST: { handler: revoke } }],
    // matched for any /v1/trust/<peer> (the server falls back to `<dir>/*`)
    ['/v1/trust/*', { GET: { handler: score } }]
  ]
}

function peerParam (value: unknown, field: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_PEER_LENGTH) throw invalid(field, 'must be a PeerId')
  try {
    return peerIdFromString(value).toString()
  } catch {
    throw invalid(field, 'must be a PeerId')
  }
}

function pick (o: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(keys.filter(k => o[k] !== undefined).map(k => [k, o[k]]))
}

async function mapErrors<T> (task: () => Promise<T>): Promise<T> {
  try {
    return await task()
  } catch (err: any) {
    const code = RECORD_ERRORS[err?.name]
    if (code !== undefined) throw new HttpError(400, code, err.message, err.field)
    throw err
  }
}
