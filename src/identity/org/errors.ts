/** A certificate is malformed: a field is missing, of the wrong type or over its limit (`field` names it) */
export class InvalidCertificateError extends Error {
  static override name = 'InvalidCertificateError'
  override name = 'InvalidCertificateError'
  constructor (message: string, readonly field: string) {
    super(message)
  }
}

/** An organisation key file is missing, unreadable, too open (mode), corrupt, or its passphrase is wrong */
export class OrgKeyError extends Error {
  static override name = 'OrgKeyError'
  override name = 'OrgKeyError'
}

/** A revocation names an organisation this node trusts but is not signed by that organisation's key, or its signature does not verify */
export class RevocationSignatureError extends Error {
  static override name = 'RevocationSignatureError'
  override name = 'RevocationSignatureError'
}
