import { generateKeyPair } from '@libp2p/crypto/keys'
import { identityFromKey, type Identity } from '../../src/identity/index.js'
import { signAttestation, type Attestation, type UnsignedAttestation } from '../../src/services/trust/index.js'

const day = 86_400_000

export async function newIdentity (): Promise<Identity> {
  return identityFromKey(await generateKeyPair('Ed25519'))
}

/** A signed record by `issuer` about `subject` (defaults: a moderate endorsement, valid a year) */
export function record (issuer: Identity, subject: Identity | string, overrides: Partial<UnsignedAttestation> = {}): Attestation {
  const issued = overrides.issued ?? Date.now()
  return signAttestation({
    type: 'endorsement',
    version: '1.0',
    issued,
    expires: issued + 365 * day,
    issuer: { type: 'agent', key: issuer.moltKey },
    subject: { key: typeof subject === 'string' ? subject : subject.moltKey },
    claims: { strength: 'moderate' },
    ...overrides
  }, issuer.signingKey)
}
