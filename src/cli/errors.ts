/** Bad command line: unknown command or flag, missing or malformed argument (exit 2) */
export class UsageError extends Error {
  static override name = 'UsageError'
  override name = 'UsageError'
}
