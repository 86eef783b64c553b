/** A relay option is missing its unit, out of range or of the wrong type */
export class InvalidRelayOptionError extends Error {
  static override name = 'InvalidRelayOptionError'
  override name = 'InvalidRelayOptionError'
  constructor (message: string, readonly option: string) {
    super(message)
  }
}

/** A relayed connection was closed because the bytes held for open circuits went over `maxHeldHopBytes` */
export class RelayMemoryLimitError extends Error {
  static override name = 'RelayMemoryLimitError'
  override name = 'RelayMemoryLimitError'
}

/** The relay's info document could not be read or is not valid */
export class InvalidRelayInfoError extends Error {
  static override name = 'InvalidRelayInfoError'
  override name = 'InvalidRelayInfoError'
}

/** The relay's DHT store refused a record or provider entry: it holds its limit of them, or the value is over its size limit */
export class DhtStoreFullError extends Error {
  static override name = 'DhtStoreFullError'
  override name = 'DhtStoreFullError'
}

/** The process may not open enough files (sockets) for the relay's `maxReservations` */
export class RelayOpenFilesError extends Error {
  static override name = 'RelayOpenFilesError'
  override name = 'RelayOpenFilesError'
  constructor (message: string, readonly needed: number, readonly limit: number) {
    super(message)
  }
}

/** A holder did not answer the relay's liveness ping in time: its connection is closed and its reservation released */
export class RelayPingTimeoutError extends Error {
  static override name = 'RelayPingTimeoutError'
  override name = 'RelayPingTimeoutError'
}
