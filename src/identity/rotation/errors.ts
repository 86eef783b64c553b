/** A key rotation statement is malformed (`field` names what is wrong) */
export class InvalidRotationError extends Error {
  static override name = 'InvalidRotationError'
  override name = 'InvalidRotationError'
  constructor (message: string, readonly field: string) {
    super(message)
  }
}

/** A rotation statement's signature by its old or its new key is missing or does not verify */
export class RotationSignatureError extends Error {
  static override name = 'RotationSignatureError'
  override name = 'RotationSignatureError'
}

/** A well-signed statement contradicts the rotations already known: the old key rotated already, the new key is taken, or its `seq` does not follow on */
export class RotationConflictError extends Error {
  static override name = 'RotationConflictError'
  override name = 'RotationConflictError'
}

/** The agent's key files cannot be rotated (no key, a rotation half done for another key, a file with loose permissions) */
export class KeyRotationError extends Error {
  static override name = 'KeyRotationError'
  override name = 'KeyRotationError'
}
