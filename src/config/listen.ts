import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'

/** Components that carry a port a listener may be asked to pick (value 0) */
const PORT_COMPONENTS = new Set(['tcp', 'udp'])
/** Hosts that mean "every interface": the bound addresses name each interface instead */
const ANY_HOST = new Set(['0.0.0.0', '::'])

/**
 * `listen` with every port 0 replaced by the port the node bound for it, read
 * from the node's addresses (`bound`): a bound address answers a listen
 * address when it has the same protocols and values, the port aside, and the
 * same host unless the listen host is 0.0.0.0 / ::. A listen address with no
 * answer keeps its 0. Returns undefined when nothing changed.
 *
 * Why: an agent that picked random ports at every start printed multiaddrs
 * that stopped working after a restart (issue #14); `molt agent` writes the
 * result to config.json `listen` once, so the next start binds the same ports.
 */
export function pinListenPorts (listen: string[], bound: Multiaddr[]): string[] | undefined {
  const candidates = bound.map(ownPart).filter((c): c is Component[] => c != null)
  let changed = false
  const pinned = listen.map((text) => {
    let wanted: Component[]
    try {
      wanted = multiaddr(text).getComponents()
    } catch {
      return text
    }
    const portIndex = wanted.findIndex(c => PORT_COMPONENTS.has(c.name) && c.value === '0')
    if (portIndex < 0) return text
    const match = candidates.find(candidate => answers(wanted, candidate, portIndex))
    if (match == null) return text
    changed = true
    return multiaddr(wanted.map((c, i) => i === portIndex ? { ...c, value: match[i].value } : c)).toString()
  })
  return changed ? pinned : undefined
}

type Component = ReturnType<Multiaddr['getComponents']>[number]

/** The address up to its own /p2p (circuit addresses are another node's port) */
function ownPart (address: Multiaddr): Component[] | undefined {
  const components = address.getComponents()
  if (components.some(c => c.name === 'p2p-circuit')) return undefined
  return components.filter(c => c.name !== 'p2p')
}

function answers (wanted: Component[], candidate: Component[], portIndex: number): boolean {
  if (wanted.length !== candidate.length) return false
  return wanted.every((w, i) => {
    const c = candidate[i]
    if (w.name !== c.name) return false
    if (i === portIndex) return c.value !== '0'
    if (i === 0 && w.value != null && ANY_HOST.has(w.value)) return true
    return w.value === c.value
  })
}
