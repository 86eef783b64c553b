import { second, hour, KiB } from '../constants.js'

/**
 * Accepted ranges of a relay operator's limits (config.json `relay.*` and
 * `molt relay` flags); the defaults are in relay/constants.ts. Kept here, below
 * relay/, because config.json is read by every part of molt and relay/ reads
 * config: config must not import relay. The duration is carried in a uint32
 * field of the circuit v2 Limit message.
 */
export const RELAY_LIMIT_BOUNDS = {
  maxReservations: { min: 1, max: 1_000_000 },
  maxReservationsPerIp: { min: 1, max: 1_000_000 },
  reservationTtlMs: { min: second, max: 7 * 24 * hour },
  connectionDataLimitBytes: { min: KiB, max: Number.MAX_SAFE_INTEGER },
  connectionDurationLimitMs: { min: second, max: 0xffff_ffff },
  bandwidthBytesPerSecond: { min: 0, max: Number.MAX_SAFE_INTEGER }
} as const

/**
 * Accepted range of `molt relay`'s drain on SIGINT/SIGTERM (config.json
 * `relay.drainTimeoutMs`, `--drain-timeout`), in ms: 0 stops at once; past an
 * hour a service manager has long since killed the process. The default is
 * relay/constants.ts DRAIN_TIMEOUT.
 */
export const RELAY_DRAIN_TIMEOUT_BOUNDS = { min: 0, max: hour } as const

export type RelayLimitName = keyof typeof RELAY_LIMIT_BOUNDS

/** The limits a relay operator sets (config.json `relay.*`, `molt relay` flags). Every field is optional. */
export interface RelayLimitsInit {
  /** Reservations held at once. @default 1024 */
  maxReservations?: number
  /** Reservations from one IPv4 address or IPv6 /64. @default 16 */
  maxReservationsPerIp?: number
  /** Reservation lifetime unless refreshed, in ms. @default 2 h */
  reservationTtlMs?: number
  /** Bytes per relayed connection, both directions together. @default 64 MiB */
  connectionDataLimitBytes?: number
  /** Lifetime of a relayed connection, in ms. @default 30 min */
  connectionDurationLimitMs?: number
  /** Relayed bytes/s (sliding window) above which new reservations and circuits are refused; 0 = no budget. @default 8 MiB/s */
  bandwidthBytesPerSecond?: number
}
