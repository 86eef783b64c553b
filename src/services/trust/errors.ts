/** The attestation is malformed: a field is missing, of the wrong type, unknown or over its limit (`field` names it) */
export class InvalidAttestationError extends Error {
  static override name = 'InvalidAttestationError'
  override name = 'InvalidAttestationError'
  constructor (message: string, readonly field: string) {
    super(message)
  }
}

/** The attestation's `id` is not the hash of its content, or its `signature` is not the issuer's */
export class AttestationSignatureError extends Error {
  static override name = 'AttestationSignatureError'
  override name = 'AttestationSignatureError'
}

/** The attestation's `expires` has passed */
export class AttestationExpiredError extends Error {
  static override name = 'AttestationExpiredError'
  override name = 'AttestationExpiredError'
}

/** The attestation is `issued` further in the future than the clock skew allowance */
export class AttestationFutureError extends Error {
  static override name = 'AttestationFutureError'
  override name = 'AttestationFutureError'
}

/** The issuer attests about itself */
export class SelfAttestationError extends Error {
  static override name = 'SelfAttestationError'
  override name = 'SelfAttestationError'
}

/** The encoded attestation is over MAX_ATTESTATION_BYTES */
export class AttestationTooLargeError extends Error {
  static override name = 'AttestationTooLargeError'
  override name = 'AttestationTooLargeError'
}

/** A revocation names a credential of another issuer */
export class RevocationMismatchError extends Error {
  static override name = 'RevocationMismatchError'
  override name = 'RevocationMismatchError'
}

/** The issuer published more attestations than its rate limit allows */
export class IssuerRateLimitError extends Error {
  static override name = 'IssuerRateLimitError'
  override name = 'IssuerRateLimitError'
}

/** The store holds MAX_STORED attestations already */
export class TrustStoreFullError extends Error {
  static override name = 'TrustStoreFullError'
  override name = 'TrustStoreFullError'
}

/** A sync peer broke the protocol (bad frame, over a limit) or did not finish in time */
export class TrustSyncError extends Error {
  static override name = 'TrustSyncError'
  override name = 'TrustSyncError'
}
