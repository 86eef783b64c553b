/** A reservation attempt on a relay did not finish within RESERVE_TIMEOUT; the attempt was aborted */
export class ReservationTimeoutError extends Error {
  static override name = 'ReservationTimeoutError'
  override name = 'ReservationTimeoutError'
}

/** The relay client stopped while a reservation attempt was running */
export class RelayClientStoppedError extends Error {
  static override name = 'RelayClientStoppedError'
  override name = 'RelayClientStoppedError'
}
