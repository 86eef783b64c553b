import { readFile } from 'node:fs/promises'
import { RelayOpenFilesError } from './errors.js'
import { OPEN_FILES_HEADROOM } from './constants.js'

/**
 * How many files this process may have open (the soft RLIMIT_NOFILE, which
 * Node raises to the hard limit at start-up), or undefined where
 * /proc/self/limits cannot be read (not Linux) or says unlimited.
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

/**
 * Refuse to start a relay that could not hold its own `maxReservations`: past
 * the open-file limit the kernel refuses new sockets (EMFILE) and holders are
 * turned away without a word in the relay's refusals.
 */
export function checkOpenFiles (maxReservations: number, limit: number | undefined): void {
  const needed = openFilesNeeded(maxReservations)
  if (limit === undefined || limit >= needed) return
  throw new RelayOpenFilesError(
    `maxReservations ${maxReservations} needs ${needed} open files, but this process may open ${limit}: ` +
    `raise the limit (ulimit -n ${needed}, or LimitNOFILE=${needed} in the systemd unit) or lower relay.maxReservations to ${Math.max(1, limit - OPEN_FILES_HEADROOM)}`,
    needed, limit)
}
