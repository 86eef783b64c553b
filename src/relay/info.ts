import { lpStream } from '@libp2p/utils'
import type { AbortOptions, Logger, PeerId, StreamHandler } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { RelayLimits } from './limits.js'
import { InvalidRelayInfoError } from './errors.js'
import * as c from './constants.js'
import { parseBoundedJson } from '../json/index.js'

/** What `/molt/relay/info/1.0.0` answers: the relay's own policy, to be trusted over a connection's `limits` */
export interface RelayInfo {
  v: 1
  peerId: string
  limits: RelayLimits
  load: {
    reservations: number
    overBudget: boolean
    shuttingDown: boolean
  }
}

/** Serve one length-prefixed JSON RelayInfo per stream, then close */
export function relayInfoHandler (info: () => RelayInfo, log: Logger): StreamHandler {
  const encoder = new TextEncoder()
  return async (stream, connection) => {
    const signal = AbortSignal.timeout(c.RELAY_INFO_TIMEOUT)
    const lp = lpStream(stream, { maxDataLength: c.RELAY_INFO_MAX_BYTES })
    await lp.write(encoder.encode(JSON.stringify(info())), { signal })
    await stream.close({ signal })
    log.trace('sent relay info to %p', connection.remotePeer)
  }
}

/** Ask a molt relay for its policy and load */
export async function fetchRelayInfo (
  node: { dialProtocol(peer: PeerId | Multiaddr, protocol: string, options?: AbortOptions): Promise<import('@libp2p/interface').Stream> },
  relay: PeerId | Multiaddr,
  options: AbortOptions = {}
): Promise<RelayInfo> {
  const signal = options.signal ?? AbortSignal.timeout(c.RELAY_INFO_TIMEOUT)
  const stream = await node.dialProtocol(relay, c.RELAY_INFO_PROTOCOL, { signal })
  try {
    const lp = lpStream(stream, { maxDataLength: c.RELAY_INFO_MAX_BYTES })
    const frame = await lp.read({ signal })
    await stream.close({ signal })
    let info: any
    try {
      info = parseBoundedJson(frame.subarray())
    } catch (err: any) {
      throw new InvalidRelayInfoError(`relay info is not JSON: ${err.message}`)
    }
    if (info?.v !== 1 || typeof info.peerId !== 'string' || typeof info.limits !== 'object' || info.limits === null) {
      throw new InvalidRelayInfoError('relay info lacks v:1, peerId or limits')
    }
    return info as RelayInfo
  } catch (err: any) {
    stream.abort(err)
    throw err
  }
}
