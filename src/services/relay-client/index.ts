export { relayClient, type RelayClient, type RelayClientInit, type RelayStatus, type HolePunchStats } from './relay-client.js'
export { ReservationTimeoutError, RelayClientStoppedError } from './errors.js'
