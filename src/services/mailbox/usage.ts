/** Count and bytes held under one key (a sender, a source address), kept while non-zero */
export interface Usage { count: number, bytes: number }

export function add (usage: Map<string, Usage>, key: string, bytes: number): void {
  const entry = usage.get(key)
  if (entry === undefined) {
    usage.set(key, { count: 1, bytes })
    return
  }
  entry.count++
  entry.bytes += bytes
}

export function subtract (usage: Map<string, Usage>, key: string, bytes: number): void {
  const entry = usage.get(key)
  if (entry === undefined) return
  entry.count--
  entry.bytes -= bytes
  if (entry.count === 0) usage.delete(key)
}
