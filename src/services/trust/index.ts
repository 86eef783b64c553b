import { DefaultTrustService } from './trust-service.js'
import type { TrustComponents, TrustInit, TrustService } from './types.js'

export { trustPubsub } from './pubsub.js'
export type {
  TrustService, TrustInit, InboxPolicy, HeldMessage, RankOptions, TrustComponents, AttestInput, ListOptions, TrustRecord, TrustStats, SyncResult
} from './types.js'
export {
  signAttestation, verifyAttestation, decodeAttestation, encodeAttestation, attestationId, peerIdOfKey, keyOfPeerId,
  ATTESTATION_TYPES, STRENGTHS, SEVERITIES, OUTCOMES
} from './attestation.js'
export type {
  Attestation, UnsignedAttestation, VerifiedAttestation, AttestationType, Claims, Evidence, Strength, Severity, Outcome, AgentRef, IssuerRef
} from './attestation.js'
export {
  InvalidAttestationError, AttestationSignatureError, AttestationExpiredError, AttestationFutureError, SelfAttestationError,
  AttestationTooLargeError, RevocationMismatchError, IssuerRateLimitError, TrustStoreFullError, TrustSyncError
} from './errors.js'
export { TOPIC, SYNC_PROTOCOL, MAX_ATTESTATION_BYTES, KEY_ROTATION_TOPIC } from './constants.js'
export type { KeyRotationRecord } from './key-rotations.js'

/** Signed attestations over gossipsub, their store, catch-up sync and this node's trust scores: `services: { trust: trust(init) }` */
export function trust (init: TrustInit): (components: TrustComponents) => TrustService {
  return (components) => new DefaultTrustService(components, init)
}
