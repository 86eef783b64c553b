import type { StoredBox } from './store-types.js'

/** What the relay keeps of a box beside what it serves: for its counters on reopen, never sent to the recipient */
export interface BoxMeta {
  /** The depositor's source address key */
  src?: string
  /** Deposited by a first-contact sender */
  fc?: boolean
}

/** The fields of a box a fetch serves (all of StoredBox but its key, which is the LevelDB key) */
export type ServedBox = Omit<StoredBox, 'key'>

/**
 * A box as written to LevelDB: `JSON(meta) "\n" JSON(served)`. JSON.stringify
 * never writes a raw newline, so the first one splits the two; the served part
 * is spliced into a fetch answer as it is, without parsing and writing again
 * every box of a page (that was a third of the relay's CPU in a drain).
 */
export function encodeRecord (meta: BoxMeta, served: ServedBox): string {
  return `${JSON.stringify(meta)}\n{"from":${JSON.stringify(served.from)},"id":${JSON.stringify(served.id)},"exp":${JSON.stringify(served.exp)},"at":${JSON.stringify(served.at)},"box":${boxJson(served.box)}}`
}

/**
 * A box as a JSON string. JSON.stringify scans and copies a kilobyte string
 * slower than base64 decodes and encodes it natively (≈ 20 vs 10 µs, a fifth
 * of a deposit's CPU), and a box in canonical base64 needs no escaping; any
 * other box (the recipient will refuse it) is escaped as usual.
 */
function boxJson (box: string): string {
  return Buffer.from(box, 'base64').toString('base64') === box ? `"${box}"` : JSON.stringify(box)
}

/** Both parts of a stored record; a record written before the split (one JSON object with `src`/`fc` in it) too */
export function decodeRecord (value: string): { meta: BoxMeta, served: ServedBox } {
  const split = value.indexOf('\n')
  if (split === -1) {
    const { src, fc, from, id, exp, at, box } = JSON.parse(value) as ServedBox & BoxMeta
    return { meta: { src, fc }, served: { from, id, exp, at, box } }
  }
  return { meta: JSON.parse(value.slice(0, split)) as BoxMeta, served: JSON.parse(value.slice(split + 1)) as ServedBox }
}

/** The JSON text of one fetched item, `{"key":…,"from":…,…}`, from the stored record */
export function servedJson (key: string, value: string): string {
  const split = value.indexOf('\n')
  // keys are digits (store.ts), so they need no escaping
  if (split !== -1) return `{"key":"${key}",${value.slice(split + 2)}`
  const { served } = decodeRecord(value)
  return JSON.stringify({ ...served, key })
}
