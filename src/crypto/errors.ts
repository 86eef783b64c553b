/** A sealed box could not be made or opened: malformed, tampered with, or for someone else */
export class SealError extends Error {
  static override name = 'SealError'
  override name = 'SealError'
}
