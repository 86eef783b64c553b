import { once } from 'node:events'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { MoltNode } from '../node.js'
import { invalid } from './validate.js'
import { entryJson } from '../inbox/index.js'

/** Default interval of the `: keepalive` comment on an idle stream */
export const DEFAULT_KEEPALIVE_MS = 15_000

export interface StreamContext {
  url: URL
  req: IncomingMessage
  res: ServerResponse
  /** Aborted when the client goes away */
  signal: AbortSignal
}

/**
 * The cursor a stream resumes after: the `Last-Event-ID` header (what an
 * EventSource sends on reconnect) wins over `?after=`; neither → undefined
 * (only messages that arrive from now on).
 */
export function resumeCursor (req: IncomingMessage, url: URL): number | undefined {
  const header = req.headers['last-event-id']
  const lastEventId = Array.isArray(header) ? header[0] : header
  if (lastEventId != null && lastEventId.trim() !== '') return cursorValue(lastEventId.trim(), 'Last-Event-ID')
  const after = url.searchParams.get('after')
  if (after != null) return cursorValue(after, 'after')
  return undefined
}

function cursorValue (raw: string, field: string): number {
  if (!/^\d+$/.test(raw)) throw invalid(field, 'must be a non-negative integer (an inbox cursor)')
  const value = Number(raw)
  if (!Number.isSafeInteger(value)) throw invalid(field, `must be at most ${Number.MAX_SAFE_INTEGER}`)
  return value
}

/**
 * GET /v1/stream: Server-Sent Events, one `message` event per inbox entry
 * (`id` = its cursor), replaying what came after the resume cursor, then live.
 * Ends when the client disconnects, the node stops or the server closes.
 */
export async function serveStream (node: MoltNode, { url, req, res, signal }: StreamContext, keepaliveMs = DEFAULT_KEEPALIVE_MS): Promise<void> {
  // no cursor: start after the newest entry, fixed before the client has the
  // headers, so nothing arriving once it is subscribed is missed
  const cursor = resumeCursor(req, url) ?? node.inboxCursor()
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    connection: 'keep-alive',
    'x-accel-buffering': 'no'
  })
  res.flushHeaders()
  // a comment right away: clients see the stream is open
  let writing: Promise<void> = write(res, ': connected\n\n', signal)
  const keepalive = setInterval(() => {
    writing = writing.then(async () => write(res, ': keepalive\n\n', signal))
  }, keepaliveMs)
  keepalive.unref()
  try {
    for await (const entry of node.messages({ after: cursor, signal })) {
      await writing
      writing = write(res, `id: ${entry.cursor}\nevent: message\ndata: ${entryJson(entry)}\n\n`, signal)
      await writing
    }
  } catch {
    // reading the inbox failed: end the stream, the client resumes from its last id
  } finally {
    clearInterval(keepalive)
    if (!res.destroyed) res.end()
  }
}

/**
 * Write one chunk, honouring backpressure: when the socket buffer is full,
 * wait for `drain` (or give up when the client has gone).
 */
async function write (res: ServerResponse, chunk: string, signal: AbortSignal): Promise<void> {
  if (signal.aborted || res.destroyed) return
  if (res.write(chunk)) return
  try {
    await once(res, 'drain', { signal })
  } catch {
    // the client disconnected while we waited: the stream is over
  }
}
