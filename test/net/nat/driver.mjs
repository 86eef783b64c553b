/**
 * Runs INSIDE one LAN namespace of the NAT topology (test/net/nat/topology.sh),
 * where the agents' local APIs live on that namespace's 127.0.0.1. The test
 * (in the default namespace, which must never dial anything but loopback)
 * drives it over stdin/stdout, one JSON object per line:
 *
 *   in:  {"id":1,"cmd":"http"|"tcp"|"converse"|"sequence"|"waitAddresses", ...args}
 *   out: {"id":1,"ok":true,"result":…} | {"id":1,"ok":false,"error":"…"}
 *        {"id":1,"event":…} progress lines of long commands
 *
 * It dials only what it is told, from inside its namespace. Plain .mjs: no build.
 * It exits when stdin closes.
 */
import { createInterface } from 'node:readline'
import { connect } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'

const write = (value) => { process.stdout.write(JSON.stringify(value) + '\n') }
const now = () => performance.now()

/** One call of an agent's local API; never throws: HTTP and network errors are results */
async function http ({ api, method = 'GET', path, body, timeoutMs = 30_000 }) {
  const started = now()
  try {
    const res = await fetch(`http://127.0.0.1:${api.port}${path}`, {
      method,
      headers: { authorization: `Bearer ${api.token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body !== undefined ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(timeoutMs)
    })
    const text = await res.text()
    let json
    try { json = JSON.parse(text) } catch { json = { raw: text.slice(0, 500) } }
    return { status: res.status, body: json, ms: Math.round(now() - started) }
  } catch (err) {
    return { status: 0, error: `${err.name}: ${err.message}${err.cause != null ? ` (${err.cause.code ?? err.cause.message})` : ''}`, ms: Math.round(now() - started) }
  }
}

/** A plain TCP connect: did the SYN get an answer within timeoutMs? */
async function tcp ({ host, port, timeoutMs = 3000 }) {
  const started = now()
  return new Promise((resolve) => {
    const socket = connect({ host, port })
    const done = (outcome) => {
      clearTimeout(timer)
      socket.destroy()
      resolve({ host, port, ...outcome, ms: Math.round(now() - started) })
    }
    const timer = setTimeout(() => { done({ connected: false, error: `no answer within ${timeoutMs} ms` }) }, timeoutMs)
    socket.once('connect', () => { done({ connected: true }) })
    socket.once('error', (err) => { done({ connected: false, error: err.code ?? err.message }) })
  })
}

/**
 * A conversation: one query every intervalMs for durationMs (each started on
 * schedule whether or not the previous one returned), every reply checked.
 */
async function converse ({ api, to, intervalMs, durationMs, timeoutMs, tag }) {
  const count = Math.floor(durationMs / intervalMs)
  const started = now()
  const results = []
  const pending = []
  for (let i = 0; i < count; i++) {
    const due = started + i * intervalMs
    if (due > now()) await sleep(due - now())
    const at = Math.round(now() - started)
    const params = { tag, i }
    pending.push(http({
      api, method: 'POST', path: '/v1/requests', timeoutMs: timeoutMs + 5000,
      body: { to, message: { op: 'query', p: { domain: 'nat', intent: 'echo', params } }, timeoutMs }
    }).then((res) => {
      const echoed = res.body?.reply?.p?.data?.echo?.params
      const ok = res.status === 200 && res.body.reply.op === 'respond' && echoed?.tag === tag && echoed?.i === i
      results[i] = { i, at, ok, ms: res.ms, ...(ok ? {} : { status: res.status, error: res.error ?? JSON.stringify(res.body).slice(0, 400) }) }
    }))
  }
  await Promise.all(pending)
  return { count, elapsedMs: Math.round(now() - started), results }
}

/**
 * At-least-once sending of `n` numbered messages (stream chunks seq 0..n-1):
 * `concurrency` workers; a send that fails (HTTP error or timeout) is retried,
 * under a new message id, until it is acknowledged. The first attempt of the
 * first message goes to `first` (a multiaddr: pins the route), everything
 * else to `to` (the PeerId: the node picks any route it knows); each worker
 * waits `paceMs` between its sends. Reports every
 * acknowledgement and failure with its time (`at`: ms since the start, `t`:
 * epoch ms, both when the attempt began); prints {"event":"progress"} lines.
 */
async function sequence ({ api, first, to, n, concurrency = 4, paceMs = 0, tag, sendTimeoutMs = 15_000, retryDelayMs = 100, maxMs = 90_000 }, id) {
  const started = now()
  const acked = new Array(n)
  const failures = []
  let next = 0
  let ackedCount = 0
  const deadline = started + maxMs
  const sendOne = async (seq) => {
    for (let attempt = 1; ; attempt++) {
      if (now() > deadline) throw new Error(`seq ${seq} not acknowledged within ${maxMs} ms (${attempt - 1} attempts)`)
      const target = seq === 0 && attempt === 1 ? first : to
      const at = Math.round(now() - started)
      const t = Date.now()
      const res = await http({
        api, method: 'POST', path: '/v1/messages', timeoutMs: sendTimeoutMs,
        body: { to: target, message: { op: 'stream', p: { action: 'chunk', stream_id: tag, seq, attempt } } }
      })
      if (res.status === 200 && res.body.delivered === true) {
        acked[seq] = { seq, id: res.body.id, attempt, at, t, ms: res.ms, route: res.body.route, relay: res.body.relay }
        ackedCount++
        write({ id, event: 'progress', acked: ackedCount, seq, at })
        return
      }
      failures.push({ seq, attempt, at, t, ms: res.ms, status: res.status, error: res.error ?? (res.body?.error?.message ?? JSON.stringify(res.body)).slice(0, 300) })
      write({ id, event: 'failure', seq, attempt, at })
      await sleep(retryDelayMs)
    }
  }
  // message 0 first, alone: it opens the route through `first`
  await sendOne(next++)
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < n) {
      await sendOne(next++)
      if (paceMs > 0) await sleep(paceMs)
    }
  }))
  return { n, elapsedMs: Math.round(now() - started), acked, failures }
}

/** Poll GET /v1/identity until `accept(addresses)`; returns when and what */
async function waitAddresses ({ api, relay, present, timeoutMs = 20_000, everyMs = 50 }) {
  const started = now()
  const through = (a) => a.includes(`/p2p/${relay}/p2p-circuit`)
  let last
  for (;;) {
    const res = await http({ api, path: '/v1/identity', timeoutMs: 5000 })
    if (res.status === 200) {
      last = res.body.addresses
      if (last.some(through) === present) return { ms: Math.round(now() - started), addresses: last }
    }
    if (now() - started > timeoutMs) {
      throw new Error(`no circuit address through ${relay} ${present ? 'appeared' : 'went away'} within ${timeoutMs} ms; addresses ${JSON.stringify(last ?? res)}`)
    }
    await sleep(everyMs)
  }
}

const commands = { http, tcp, converse, sequence, waitAddresses }

createInterface({ input: process.stdin }).on('line', (line) => {
  let request
  try {
    request = JSON.parse(line)
  } catch {
    write({ id: null, ok: false, error: `not JSON: ${line.slice(0, 200)}` })
    return
  }
  const { id, cmd, ...args } = request
  const command = commands[cmd]
  if (command == null) {
    write({ id, ok: false, error: `unknown command ${cmd}` })
    return
  }
  Promise.resolve()
    .then(async () => command(args, id))
    .then((result) => { write({ id, ok: true, result }) }, (err) => { write({ id, ok: false, error: err?.message ?? String(err) }) })
}).on('close', () => { process.exit(0) })

write({ event: 'ready', pid: process.pid })
