/** Bad command line: unknown command or flag, missing or malformed argument (exit 2) */
export class UsageError extends Error {
  static override name = 'UsageError'
  override name = 'UsageError'
}

/** `molt agent` could not bind a listen address (exit 1): it says which, and how to pick another */
export class ListenAddressInUseError extends Error {
  static override name = 'ListenAddressInUseError'
  override name = 'ListenAddressInUseError'
}
