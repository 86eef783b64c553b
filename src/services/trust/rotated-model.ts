import type { Experience, Signal } from './model/index.js'

/**
 * The score inputs with every PeerId replaced by the newest PeerId of its
 * identity (`current`, from the key rotations held): attestations about or by
 * an old key count for the new one, and this node's exchanges with both are
 * summed. The signed records themselves are untouched: they stay verifiable
 * under the key that signed them. A record that the mapping turns into an
 * identity's statement about itself is dropped.
 */
export function rotatedInputs (
  signals: Iterable<Signal>, experience: ReadonlyMap<string, Experience>, current: (peer: string) => string
): { signals: Signal[], experience: Map<string, Experience> } {
  const mapped: Signal[] = []
  for (const s of signals) {
    const issuer = current(s.issuer)
    const subject = current(s.subject)
    if (issuer === subject) continue
    mapped.push(issuer === s.issuer && subject === s.subject ? s : { ...s, issuer, subject })
  }
  const merged = new Map<string, Experience>()
  for (const [peer, e] of experience) {
    const id = current(peer)
    const other = merged.get(id)
    merged.set(id, other === undefined ? e : { success: other.success + e.success, failure: other.failure + e.failure, at: Math.max(other.at, e.at) })
  }
  return { signals: mapped, experience: merged }
}
