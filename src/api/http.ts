import type { IncomingMessage, ServerResponse } from 'node:http'
import { HttpError } from './errors.js'
import { JsonTooDeepError, parseBoundedJson } from '../json/index.js'

/** Read the whole request body, refusing (413) more than `maxBytes` */
export async function readBody (req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'])
  if (declared > maxBytes) throw tooLarge(maxBytes)
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const done = (err?: Error): void => {
      req.off('data', onData)
      req.off('end', onEnd)
      req.off('error', done)
      req.off('close', onClose)
      if (err != null) reject(err)
      else resolve(Buffer.concat(chunks, size))
    }
    const onData = (chunk: Buffer): void => {
      size += chunk.byteLength
      // stop buffering, but leave the socket alone so the 413 can still be written
      if (size > maxBytes) done(tooLarge(maxBytes))
      else chunks.push(chunk)
    }
    const onEnd = (): void => { done() }
    const onClose = (): void => { done(new HttpError(400, 'E_PARSE', 'request body ended early')) }
    req.on('data', onData)
    req.on('end', onEnd)
    req.on('error', done)
    req.on('close', onClose)
  })
}

/** Parse a JSON body; an empty or malformed body is E_PARSE, one nested too deep E_INVALID_PARAM */
export function parseJson (body: Buffer): unknown {
  try {
    return parseBoundedJson(body)
  } catch (err: any) {
    if (err instanceof JsonTooDeepError) throw new HttpError(400, 'E_INVALID_PARAM', `request body ${err.message}`)
    throw new HttpError(400, 'E_PARSE', `request body is not valid JSON: ${err.message}`)
  }
}

export function sendJson (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return
  sendJsonText(res, status, JSON.stringify(body), headers)
}

/** Send an already serialized JSON document */
export function sendJsonText (res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...headers
  })
  res.end(text)
}

export function sendError (res: ServerResponse, err: HttpError, headers: Record<string, string> = {}): void {
  const error: { code: string, message: string, field?: string } = { code: err.code, message: err.message }
  if (err.field !== undefined) error.field = err.field
  // an oversized body is left unread: close the connection rather than drain it
  if (err.status === 413) headers = { ...headers, connection: 'close' }
  sendJson(res, err.status, { error }, headers)
}

function tooLarge (maxBytes: number): HttpError {
  return new HttpError(413, 'E_INVALID_PARAM', `request body exceeds ${maxBytes} bytes`)
}
