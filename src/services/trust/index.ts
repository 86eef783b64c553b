export { trust, trustPubsub } from './trust-service.js'
export type {
  TrustService, TrustInit, InboxPolicy, HeldMessage, RankOptions, TrustComponents, AttestInput, ListOptions, TrustRecord, TrustStats, SyncResult
} from './trust-service.js'
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
export { TOPIC, SYNC_PROTOCOL, MAX_ATTESTATION_BYTES } from './constants.js'
