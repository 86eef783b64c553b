import { stringifyOr } from '../json/index.js'
import type { InboxEntry } from './inbox.js'

/** What stands in for an inbox entry that cannot be serialized: its cursor (so a client moves past it) and why */
export interface UnserializableEntry {
  cursor: number
  receivedAt: number
  peer: string
  route: string
  /** The message id, when it is a short string */
  id?: string
  error: { code: 'E_INTERNAL', message: string }
}

/**
 * One inbox entry as JSON, on its own. An entry that cannot be serialized
 * (a message stored before the depth limit, nested past JSON.stringify's
 * stack) becomes an UnserializableEntry rather than failing its whole page.
 */
export function entryJson (entry: InboxEntry): string {
  return stringifyOr(entry, err => unserializable(entry, err))
}

export function unserializable (entry: InboxEntry, err: Error): UnserializableEntry {
  const id: unknown = entry.message?.id
  return {
    cursor: entry.cursor,
    receivedAt: entry.receivedAt,
    peer: entry.peer,
    route: entry.route,
    ...(typeof id === 'string' && id.length <= 64 ? { id } : {}),
    error: { code: 'E_INTERNAL', message: `this entry cannot be serialized (${err.message}); skip it with after=${entry.cursor}` }
  }
}
