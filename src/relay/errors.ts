/** A relay option is missing its unit, out of range or of the wrong type */
export class InvalidRelayOptionError extends Error {
  static override name = 'InvalidRelayOptionError'
  override name = 'InvalidRelayOptionError'
  constructor (message: string, readonly option: string) {
    super(message)
  }
}

/** The relay's info document could not be read or is not valid */
export class InvalidRelayInfoError extends Error {
  static override name = 'InvalidRelayInfoError'
  override name = 'InvalidRelayInfoError'
}
