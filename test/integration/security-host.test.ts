/**
 * Issue #15 finding 6: every route of both HTTP servers (the local API,
 * public routes included, and the metrics/dashboard port) answers only to
 * loopback Host names. A foreign Host (a web page that pointed its own DNS
 * name at 127.0.0.1: DNS rebinding) gets 403, the status the relay dashboard
 * already answered, before any route (or token) is looked at.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { request } from 'node:http'
import { Registry } from 'prom-client'
import WebSocket from 'ws'
import { apiScene, type ApiScene } from '../support/api.js'
import { startMetricsServer, type MetricsServer } from '../../src/metrics/index.js'

let scene: ApiScene
let metrics: MetricsServer

beforeAll(async () => {
  scene = await apiScene()
  const registry = new Registry()
  metrics = await startMetricsServer(registry, 0, {
    routes: (req, res) => {
      if (new URL(req.url ?? '/', 'http://localhost').pathname !== '/extra') return false
      res.end('extra\n')
      return true
    }
  })
})

afterAll(async () => {
  await metrics?.close()
  await scene?.cleanup()
})

async function get (url: string, host: string, headers: Record<string, string> = {}): Promise<{ status: number, body: string }> {
  return new Promise((resolve, reject) => {
    request(url, { headers: { ...headers, host } }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { body += chunk })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body }) })
    }).on('error', reject).end()
  })
}

const FOREIGN = ['attacker.example', 'attacker.example:80', '127.0.0.1.attacker.example', 'localhost.attacker.example:1234', '[::2]']
const LOOPBACK = ['127.0.0.1', 'localhost:9999', 'LOCALHOST', '[::1]:80', '127.0.0.2:1']

describe('finding 6: Host checks on every route', () => {
  it('the local API refuses a foreign Host on every route, public ones included, with 403 E_AUTH_FAILED', async () => {
    const auth = { authorization: `Bearer ${scene.token}` }
    for (const path of ['/v1/health', '/health', '/health/ready', '/metrics', '/v1/identity', '/v1/messages', '/no/such/route']) {
      for (const host of FOREIGN) {
        const { status, body } = await get(`${scene.server.url}${path}`, host, auth)
        expect(status, `${path} Host: ${host}`).toBe(403)
        expect(JSON.parse(body).error.code).toBe('E_AUTH_FAILED')
      }
    }
  })

  it('the local API still serves loopback Host names', async () => {
    for (const host of LOOPBACK) {
      const { status, body } = await get(`${scene.server.url}/v1/health`, host)
      expect(status, host).toBe(200)
      expect(JSON.parse(body).peerId).toBe(scene.alice.peerId.toString())
    }
    expect((await get(`${scene.server.url}/health/ready`, 'localhost')).status).toBe(200)
  })

  it('a WebSocket upgrade with a foreign Host is refused with 403', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(`${scene.server.url.replace('http:', 'ws:')}/v1/stream`, { headers: { authorization: `Bearer ${scene.token}`, host: 'attacker.example' } })
      ws.once('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0); res.resume() })
      ws.once('open', () => { ws.terminate(); resolve(101) })
      ws.once('error', reject)
    })
    expect(status).toBe(403)
  })

  it('the metrics port refuses a foreign Host on /metrics, its extra routes and unknown paths; serves loopback', async () => {
    const base = metrics.url.replace(/\/metrics$/, '')
    for (const path of ['/metrics', '/extra', '/nothing']) {
      for (const host of FOREIGN) expect((await get(`${base}${path}`, host)).status, `${path} Host: ${host}`).toBe(403)
    }
    for (const host of LOOPBACK) {
      expect((await get(`${base}/metrics`, host)).status, host).toBe(200)
      expect((await get(`${base}/extra`, host)).body).toBe('extra\n')
    }
  })
})
