import { readFile } from 'node:fs/promises'
import { RelayOpenFilesError } from './errors.js'
import { MAX_RESERVATIONS, MIN_CAPPED_RESERVATIONS, OPEN_FILES_BESIDE_CONNECTIONS, OPEN_FILES_HEADROOM } from './constants.js'
import { resolveRelayLimits, type RelayLimits, type RelayLimitsInit, type RelayTuningInit } from './limits.js'

/**
 * How many files this process may open: the soft RLIMIT_NOFILE, which Node
 * already raised as far as it may (to the hard limit) at start-up. Node has no
 * setrlimit() and molt takes no native addon, so there is nothing more to
 * raise from here: only the operator can (`ulimit -n`, systemd `LimitNOFILE=`).
 * Undefined where /proc/self/limits cannot be read (not Linux) or says unlimited.
 */
export async function openFileLimit (limitsFile = '/proc/self/limits'): Promise<number | undefined> {
  let text: string
  try {
    text = await readFile(limitsFile, 'utf8')
  } catch {
    return undefined
  }
  const line = text.split('\n').find(l => l.startsWith('Max open files'))
  const soft = line?.slice('Max open files'.length).trim().split(/\s+/)[0]
  if (soft === undefined || !/^\d+$/.test(soft)) return undefined
  return Number(soft)
}

/** Open files a relay needs for `maxReservations` holders: one socket each, plus OPEN_FILES_HEADROOM */
export function openFilesNeeded (maxReservations: number): number {
  return maxReservations + OPEN_FILES_HEADROOM
}

/** The reservations that fit in `limit` open files */
export function reservationsThatFit (limit: number): number {
  return limit - OPEN_FILES_HEADROOM
}

/**
 * Refuse a relay that could not hold its own `maxReservations`: past the
 * open-file limit the kernel refuses new sockets (EMFILE) and holders are
 * turned away without a word in the relay's refusals.
 */
export function checkOpenFiles (maxReservations: number, limit: number | undefined): void {
  const needed = openFilesNeeded(maxReservations)
  if (limit === undefined || limit >= needed) return
  throw new RelayOpenFilesError(
    `maxReservations ${maxReservations} needs ${needed} open files, but this process may open ${limit}: ` +
    `raise the limit (ulimit -n ${needed}, or LimitNOFILE=${needed} in the systemd unit) or lower relay.maxReservations to ${Math.max(1, reservationsThatFit(limit))}`,
    needed, limit)
}

/** A relay holding fewer reservations than its default because of the open-file limit */
export interface OpenFilesCap {
  message: string
  /** The open files this process may have */
  limit: number
  /** The reservations the relay holds: limit − OPEN_FILES_HEADROOM */
  maxReservations: number
  /** The reservations it would have held */
  wanted: number
}

export interface FitOpenFilesOptions {
  /** Where the limit comes from (tests). @default openFileLimit() */
  readLimit?: () => Promise<number | undefined>
  /** Told once when the relay holds fewer reservations than its default. @default process.emitWarning */
  warn?: (cap: OpenFilesCap) => void
}

/**
 * The relay's limits, with maxReservations fitted to the open-file limit.
 * An operator's own number (`asked`: the option or flag, or a config value
 * other than the default) that does not fit is refused (RelayOpenFilesError):
 * they asked for something this process cannot do. The default is capped to
 * what fits instead, with one warning naming the limit, the cap and the knobs,
 * unless not even MIN_CAPPED_RESERVATIONS fit.
 */
export async function fitOpenFiles (init: RelayLimitsInit & RelayTuningInit, asked: boolean, options: FitOpenFilesOptions = {}): Promise<RelayLimits> {
  const limit = await (options.readLimit ?? openFileLimit)()
  // a derived maxConnections (2 per reservation and the DHT's) stays under the limit: pruned, not EMFILE
  const resolve = (i: RelayLimitsInit & RelayTuningInit): RelayLimits => {
    const resolved = resolveRelayLimits(i)
    return limit === undefined || i.maxConnections !== undefined
      ? resolved
      : { ...resolved, maxConnections: Math.min(resolved.maxConnections, limit - OPEN_FILES_BESIDE_CONNECTIONS) }
  }
  const limits = resolve(init)
  if (limit === undefined || limit >= openFilesNeeded(limits.maxReservations)) return limits
  const fits = reservationsThatFit(limit)
  if (asked) checkOpenFiles(limits.maxReservations, limit)
  const wanted = limits.maxReservations
  const needed = openFilesNeeded(wanted)
  if (fits < MIN_CAPPED_RESERVATIONS) {
    throw new RelayOpenFilesError(
      `this process may open ${limit} files, too few for a relay (${openFilesNeeded(MIN_CAPPED_RESERVATIONS)} at least, ${needed} for the default maxReservations ${wanted}): ` +
      `raise the limit (ulimit -n ${needed}, or LimitNOFILE=${needed} in the systemd unit)` +
      (fits >= 1 ? ` or set relay.maxReservations (or --max-reservations) to ${fits} or fewer` : ''),
      openFilesNeeded(MIN_CAPPED_RESERVATIONS), limit)
  }
  const cap: OpenFilesCap = {
    message: `this process may open ${limit} files, fewer than the ${needed} that maxReservations ${wanted} needs: ` +
      `holding at most ${fits} reservations. For ${wanted}, raise the limit (ulimit -n ${needed} before starting, ` +
      `or LimitNOFILE=${needed} in the systemd unit); set relay.maxReservations (or --max-reservations) to choose the number yourself`,
    limit,
    maxReservations: fits,
    wanted
  }
  ;(options.warn ?? emitWarning)(cap)
  return resolve({ ...init, maxReservations: fits })
}

/**
 * Whether the operator chose maxReservations: an option (flag) does; a config
 * value does unless it is the default, which `molt relay --init` writes for
 * everyone.
 */
export function askedReservations (option: number | undefined, config: number | undefined): boolean {
  return option !== undefined || (config !== undefined && config !== MAX_RESERVATIONS)
}

function emitWarning (cap: OpenFilesCap): void {
  process.emitWarning(cap.message, { code: 'MOLT_RELAY_OPEN_FILES' })
}
