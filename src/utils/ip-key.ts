import type { Multiaddr } from '@multiformats/multiaddr'

/**
 * What per-IP limits count by: the IPv4 address, or the /64 of an IPv6 one
 * (a single host usually gets a whole /64). IPv4-mapped IPv6 counts as IPv4.
 */
export function ipKey (addr: Multiaddr): string {
  const component = addr.getComponents().find(part => part.name === 'ip4' || part.name === 'ip6')
  const value = component?.value
  if (value == null) return 'unknown'
  if (component?.name === 'ip4') return value
  const groups = expandIpv6(value)
  if (groups.slice(0, 5).every(g => g === '0') && groups[5] === 'ffff') {
    // IPv4-mapped (::ffff:a.b.c.d, which multiaddr prints as ::ffff:xxxx:xxxx)
    const [hi, lo] = [parseInt(groups[6], 16), parseInt(groups[7], 16)]
    return [hi >> 8, hi & 0xff, lo >> 8, lo & 0xff].join('.')
  }
  return `${groups.slice(0, 4).join(':')}::/64`
}

function expandIpv6 (address: string): string[] {
  address = address.toLowerCase().split('%')[0]
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(address)
  if (dotted != null) {
    const [a, b, c, d] = dotted.slice(1).map(Number)
    address = address.slice(0, dotted.index) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`
  }
  const [head, tail = ''] = address.split('::')
  const left = head === '' ? [] : head.split(':')
  const right = address.includes('::') ? (tail === '' ? [] : tail.split(':')) : []
  const fill = address.includes('::') ? Array(Math.max(0, 8 - left.length - right.length)).fill('0') : []
  return [...left, ...fill, ...right].map(part => part.replace(/^0+(?=.)/, ''))
}
