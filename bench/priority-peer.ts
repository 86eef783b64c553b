/**
 * bench/peer.ts with the receiving side traced (bench/priority-trace.ts): the
 * steps of every traced message are written to $MOLT_PRIORITY_TRACE at exit.
 */
import { traceReceiver, writeTraceAtExit } from './priority-trace.js'

const file = process.env.MOLT_PRIORITY_TRACE
if (file != null) writeTraceAtExit(traceReceiver(), file)
await import('./peer.js')
