import * as c from './constants.js'
import { InvalidRelayOptionError } from './errors.js'
import type { RelayLimitsInit } from '../config/relay-limits.js'

export type { RelayLimitsInit } from '../config/relay-limits.js'

/** Tuning below the operator-facing limits; rarely changed */
export interface RelayTuningInit {
  /** Window the bandwidth is averaged over, in ms. @default 10 s */
  bandwidthWindowMs?: number
  /** Connections kept before the connection manager prunes. @default 2 × maxReservations + 256 */
  maxConnections?: number
  /** Hop streams per connection. @default 32 */
  maxInboundHopStreams?: number
  /** Stop streams the relay opens per connection (circuits into one peer). @default 64 */
  maxOutboundStopStreams?: number
  /** Time for one hop request, in ms. @default 15 s */
  hopTimeoutMs?: number
  /** Dialler bytes held for open relayed connections (an upstream buffer) before the largest is closed. @default 256 MiB */
  maxHeldHopBytes?: number
  /** Each connection is pinged once per this, spread over it, in ms. @default 5 min */
  pingIntervalMs?: number
  /** A ping unanswered for this closes its connection, in ms. @default 60 s */
  pingTimeoutMs?: number
}

/**
 * The policy a relay applies, advertised as is in `stats`, the CLI's
 * listening line and `/molt/relay/info/1.0.0`. Trust this rather than a relayed
 * connection's `limits`: js-libp2p sends the duration in ms where the spec says
 * seconds, and counts data in both directions against one limit.
 */
export interface RelayLimits extends Required<RelayLimitsInit>, Required<RelayTuningInit> {
  /** Always true: one data budget per relayed connection, shared by both directions */
  connectionDataLimitCountsBothDirections: true
}

const DEFAULTS: Required<RelayLimitsInit> = {
  maxReservations: c.MAX_RESERVATIONS,
  maxReservationsPerIp: c.MAX_RESERVATIONS_PER_IP,
  reservationTtlMs: c.RESERVATION_TTL,
  connectionDataLimitBytes: c.CONNECTION_DATA_LIMIT,
  connectionDurationLimitMs: c.CONNECTION_DURATION_LIMIT,
  bandwidthBytesPerSecond: c.BANDWIDTH_BYTES_PER_SECOND
}

/** The operator-facing limits with their defaults (what `molt relay --init` writes) */
export function defaultRelayLimits (): Required<RelayLimitsInit> {
  return { ...DEFAULTS }
}

/** Fill defaults and check ranges; throws InvalidRelayOptionError naming the option */
export function resolveRelayLimits (init: RelayLimitsInit & RelayTuningInit = {}): RelayLimits {
  const limits: Required<RelayLimitsInit> = { ...DEFAULTS }
  for (const name of Object.keys(c.RELAY_LIMIT_BOUNDS) as c.RelayLimitName[]) {
    const value = init[name]
    if (value === undefined) continue
    const { min, max } = c.RELAY_LIMIT_BOUNDS[name]
    checkInteger(name, value, min, max)
    limits[name] = value
  }
  const tuned = {
    bandwidthWindowMs: init.bandwidthWindowMs ?? c.BANDWIDTH_WINDOW,
    maxConnections: init.maxConnections ?? 2 * limits.maxReservations + (c.MAX_CONNECTIONS - 2 * c.MAX_RESERVATIONS),
    maxInboundHopStreams: init.maxInboundHopStreams ?? c.MAX_INBOUND_HOP_STREAMS,
    maxOutboundStopStreams: init.maxOutboundStopStreams ?? c.MAX_OUTBOUND_STOP_STREAMS,
    hopTimeoutMs: init.hopTimeoutMs ?? c.HOP_TIMEOUT,
    maxHeldHopBytes: init.maxHeldHopBytes ?? c.MAX_HELD_HOP_BYTES,
    pingIntervalMs: init.pingIntervalMs ?? c.RELAY_PING_INTERVAL,
    pingTimeoutMs: init.pingTimeoutMs ?? c.RELAY_PING_TIMEOUT
  }
  for (const [name, value] of Object.entries(tuned)) checkInteger(name, value, 1, Number.MAX_SAFE_INTEGER)
  return { ...limits, ...tuned, connectionDataLimitCountsBothDirections: true }
}

function checkInteger (name: string, value: unknown, min: number, max: number): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidRelayOptionError(`${name} must be a whole number between ${min} and ${max}, got ${String(value)}`, name)
  }
}
