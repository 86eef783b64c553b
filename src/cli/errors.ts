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

/** The first SIGINT/SIGTERM: the running command is asked to finish (a second one exits at once, 130) */
export class InterruptedError extends Error {
  static override name = 'InterruptedError'
  override name = 'InterruptedError'
}
