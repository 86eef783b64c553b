/** The data directory's key file is unreadable, malformed or has unsafe permissions */
export class IdentityError extends Error {
  static override name = 'IdentityError'
  override name = 'IdentityError'
}

/** Another live process already runs a node with this data directory's key */
export class NodeLockedError extends Error {
  static override name = 'NodeLockedError'
  override name = 'NodeLockedError'
  constructor (message: string, readonly pid: number) {
    super(message)
  }
}

/** The config file is not valid JSON or a field has the wrong type/value */
export class ConfigError extends Error {
  static override name = 'ConfigError'
  override name = 'ConfigError'
  constructor (message: string, readonly field?: string) {
    super(message)
  }
}

/** The node was used before start() or after stop() */
export class NotStartedError extends Error {
  static override name = 'NotStartedError'
  override name = 'NotStartedError'
}

/** A request got no correlated reply in time */
export class RequestTimeoutError extends Error {
  static override name = 'RequestTimeoutError'
  override name = 'RequestTimeoutError'
}
