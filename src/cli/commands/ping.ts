import { setTimeout as sleep } from 'node:timers/promises'
import { integerFlag, peerPositional, stringFlag } from '../args.js'
import { openNetwork } from '../network.js'
import type { Command } from '../command.js'

export const ping: Command = {
  spec: {
    name: 'ping',
    args: '<peer>',
    details: 'Exits 1 when no pong came back. With --json prints one summary object.',
    options: {
      count: { type: 'string', arg: '<n>', description: 'number of pings (default 1)' },
      interval: { type: 'string', arg: '<ms>', description: 'pause between pings (default 1000)' },
      timeout: { type: 'string', arg: '<ms>', description: 'how long to wait for each pong (default 30000)' }
    }
  },

  async run ({ args, dataDir, out, signal }) {
    const peer = peerPositional(args, this.spec)
    const count = integerFlag(stringFlag(args.values, 'count'), 'count', 1, 1_000_000) ?? 1
    const interval = integerFlag(stringFlag(args.values, 'interval'), 'interval', 0, 3_600_000) ?? 1000
    const timeoutMs = integerFlag(stringFlag(args.values, 'timeout'), 'timeout', 1, 600_000)

    const network = await openNetwork(dataDir, signal)
    const rtts: number[] = []
    let sent = 0
    let lastError: Error | undefined
    try {
      for (let seq = 1; seq <= count && !signal.aborted; seq++) {
        if (seq > 1) await sleep(interval, undefined, { signal }).catch(() => {})
        if (signal.aborted) break
        sent++
        try {
          const { rttMs, pong } = await network.ping(peer, { timeoutMs })
          rtts.push(rttMs)
          out.line(`pong from ${pong.from.agent}@${pong.from.org}: seq=${seq} rtt=${rttMs.toFixed(2)} ms`)
        } catch (err: any) {
          if (signal.aborted) break
          lastError = err
          out.note(`seq=${seq}: ${err.message}`)
        }
      }
    } finally {
      await network.close()
    }
    if (rtts.length === 0 && lastError != null) throw lastError
    const summary = {
      peer,
      sent,
      received: rtts.length,
      rttMs: rtts,
      min: rtts.length > 0 ? Math.min(...rtts) : null,
      avg: rtts.length > 0 ? rtts.reduce((a, b) => a + b, 0) / rtts.length : null,
      max: rtts.length > 0 ? Math.max(...rtts) : null
    }
    out.result(
      `${summary.received}/${summary.sent} pongs` + (summary.received > 0 ? `, rtt min/avg/max = ${summary.min?.toFixed(2)}/${summary.avg?.toFixed(2)}/${summary.max?.toFixed(2)} ms` : ''),
      summary
    )
  }
}
