import { describe, it, expect } from 'vitest'
import { defaultLogger } from '@libp2p/logger'
import type { Connection } from '@libp2p/interface'
import { HolderPings } from '../../src/relay/holder-pings.js'

/** A connection whose ping stream opens never (`hang`) or is refused as unsupported; records when each ping began */
function connection (behaviour: 'hang' | 'unsupported', pings: number[]): Connection & { aborted?: Error } {
  const conn: any = {
    status: 'open',
    remotePeer: { toString: () => 'peer' },
    newStream: async (_protocol: string, options: { signal: AbortSignal }) => {
      pings.push(performance.now())
      if (behaviour === 'unsupported') throw Object.assign(new Error('no ping here'), { name: 'UnsupportedProtocolError' })
      return await new Promise((_resolve, reject) => {
        options.signal.addEventListener('abort', () => { reject(options.signal.reason) }, { once: true })
      })
    },
    abort: (err: Error) => { conn.aborted = err; conn.status = 'closed' }
  }
  return conn
}

const log = defaultLogger().forComponent('test')
/** What the relay's @libp2p/ping service does first: open a ping stream on the connection */
const ping = async (c: Connection, options: { signal: AbortSignal }): Promise<unknown> => c.newStream('/ipfs/ping/1.0.0', options)

describe('relay holder pings', () => {
  it('spreads a round over the interval: one ping every interval / connections, never all at once', async () => {
    const pings: number[] = []
    const connections = Array.from({ length: 5 }, () => connection('unsupported', pings))
    const pinger = new HolderPings({ intervalMs: 250, timeoutMs: 1000 }, { connections: () => connections, ping, log })
    pinger.start()
    // a round and the start of the next
    while (pings.length < 6) await new Promise(resolve => setTimeout(resolve, 10))
    pinger.stop()
    // libp2p's monitor would open all five in the same tick; here they are ≥ 250 / 5 ms apart (timers never fire early; 1 ms of rounding)
    for (let i = 1; i < pings.length; i++) expect(pings[i] - pings[i - 1]).toBeGreaterThanOrEqual(49)
    // a holder that does not speak ping is not dropped
    expect(connections.every(c => c.aborted === undefined)).toBe(true)
  })

  it('closes a connection whose ping is not answered within the timeout (RelayPingTimeoutError), and only that one', async () => {
    const pings: number[] = []
    const silent = connection('hang', pings)
    const alive = connection('unsupported', pings)
    const pinger = new HolderPings({ intervalMs: 20, timeoutMs: 100 }, { connections: () => [silent, alive].filter(c => c.status === 'open'), ping, log })
    pinger.start()
    await new Promise<void>((resolve) => {
      const check = setInterval(() => { if (silent.aborted !== undefined) { clearInterval(check); resolve() } }, 10)
    })
    pinger.stop()
    expect(silent.aborted?.name).toBe('RelayPingTimeoutError')
    expect(alive.aborted).toBeUndefined()
    expect(pinger.counts.failed).toBe(1)
  })

  it('stops pinging when stopped, and a stop is not a failed ping', async () => {
    const pings: number[] = []
    const slow = connection('hang', pings)
    const pinger = new HolderPings({ intervalMs: 10, timeoutMs: 10_000 }, { connections: () => [slow], ping, log })
    pinger.start()
    while (pings.length === 0) await new Promise(resolve => setTimeout(resolve, 5))
    pinger.stop()
    const count = pings.length
    await new Promise(resolve => setTimeout(resolve, 60))
    expect(pings.length).toBe(count)
    expect(slow.aborted).toBeUndefined()
  })
})
