import { describe, it, expect, afterAll } from 'vitest'
import { spawn, spawnSync } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createInterface } from 'node:readline'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { TestNetwork } from '../support/nodes.js'
import { CLI } from '../support/cli.js'
import { defaultConfig, parseConfig } from '../../src/config/index.js'
import { applyEnv, envOverrides } from '../../src/config/env.js'
import { ConfigError } from '../../src/errors.js'
import { startApiServer, loadOrCreateApiToken, type ApiServer } from '../../src/api/index.js'

const net = new TestNetwork()
const servers: ApiServer[] = []
const dirs: string[] = []

afterAll(async () => {
  await Promise.all(servers.map(async s => s.close()))
  await net.cleanup()
  await Promise.all(dirs.map(async d => rm(d, { recursive: true, force: true })))
})

async function tempDir (): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'molt-ops-test-'))
  dirs.push(dir)
  return dir
}

async function randomPeerId (): Promise<string> {
  return peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
}

/** A 127.0.0.1 TCP port nothing listens on (bound, then released) */
async function closedPort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
  const { port } = server.address() as { port: number }
  await new Promise<void>((resolve) => { server.close(() => { resolve() }) })
  return port
}

/** Run the built CLI with exactly `env` (plus PATH) */
async function molt (args: string[], env: Record<string, string>): Promise<{ code: number | null, stdout: string, stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (c: string) => { stdout += c })
  child.stderr.setEncoding('utf8').on('data', (c: string) => { stderr += c })
  const code = await new Promise<number | null>((resolve) => { child.once('close', resolve) })
  return { code, stdout, stderr }
}

describe('applyEnv', () => {
  it('maps every MOLT_* variable onto its field, over the config file, leaving the input alone', async () => {
    const file = parseConfig({ agent: { name: 'from-file', org: 'file-org' }, api: { port: 1234 }, discovery: { mdns: true } })
    const relay = `/ip4/127.0.0.1/tcp/4001/p2p/${await randomPeerId()}`
    const boot = `/ip4/127.0.0.1/tcp/4002/p2p/${await randomPeerId()}`
    const env = {
      MOLT_AGENT_NAME: 'from-env',
      MOLT_LISTEN: '/ip4/127.0.0.1/tcp/0, /ip4/127.0.0.1/tcp/0/ws',
      MOLT_API_PORT: '7411',
      MOLT_REQUIRE_SIGNATURES: 'true',
      MOLT_MDNS: 'false',
      MOLT_BOOTSTRAP: boot,
      MOLT_RELAYS: relay,
      MOLT_AGENT_ORG: ''
    }
    const config = applyEnv(file, env)
    expect(config.agent).toMatchObject({ name: 'from-env', org: 'file-org' })
    expect(config.listen).toEqual(['/ip4/127.0.0.1/tcp/0', '/ip4/127.0.0.1/tcp/0/ws'])
    expect(config.api.port).toBe(7411)
    expect(config.speak.requireSignatures).toBe(true)
    expect(config.discovery.mdns).toBe(false)
    expect(config.discovery.bootstrap).toEqual([boot])
    expect(config.relays).toEqual([relay])
    // the file's values are untouched, unset/empty variables change nothing
    expect(file.agent.name).toBe('from-file')
    expect(file.api.port).toBe(1234)
    expect(applyEnv(file, {})).toEqual(file)
    expect(envOverrides(env)).not.toContain('MOLT_AGENT_ORG')
    expect(envOverrides(env)).toContain('MOLT_API_PORT')
  })

  it('defaults < config file < env', () => {
    expect(applyEnv(defaultConfig(), {}).agent.org).toBe('local')
    const file = parseConfig({ agent: { org: 'file' } })
    expect(file.agent.org).toBe('file')
    expect(applyEnv(file, { MOLT_AGENT_ORG: 'env' }).agent.org).toBe('env')
  })

  it.each([
    ['MOLT_API_PORT', 'abc', 'api.port'],
    ['MOLT_API_PORT', '70000', 'api.port'],
    ['MOLT_REQUIRE_SIGNATURES', 'yes', 'speak.requireSignatures'],
    ['MOLT_MDNS', '1', 'discovery.mdns'],
    ['MOLT_AGENT_NAME', 'bad name!', 'agent.name'],
    ['MOLT_LISTEN', 'tcp/0', 'listen'],
    ['MOLT_RELAYS', '/ip4/127.0.0.1/tcp/4001', 'relays'],
    ['MOLT_BOOTSTRAP', '/ip4/127.0.0.1/tcp/4001', 'discovery.bootstrap']
  ])('%s=%s is refused naming the variable and %s', (name, value, field) => {
    let error: unknown
    try {
      applyEnv(defaultConfig(), { [name]: value })
    } catch (err) {
      error = err
    }
    expect(error).toBeInstanceOf(ConfigError)
    expect((error as ConfigError).field).toBe(field)
    expect((error as ConfigError).message).toContain(name)
    expect((error as ConfigError).message).toContain(field)
  })
})

describe('molt config', () => {
  it('show --json: defaults + config.json + MOLT_* env', async () => {
    const dir = await tempDir()
    await writeFile(join(dir, 'config.json'), JSON.stringify({ agent: { name: 'filed', org: 'file-org' }, api: { port: 5000 } }))
    const result = await molt(['config', 'show', '--json', '--data-dir', dir], { MOLT_AGENT_ORG: 'env-org', MOLT_MDNS: 'false' })
    expect(result.code, result.stderr).toBe(0)
    const shown = JSON.parse(result.stdout)
    expect(shown.path).toBe(join(dir, 'config.json'))
    expect(shown.env.sort()).toEqual(['MOLT_AGENT_ORG', 'MOLT_MDNS'])
    expect(shown.config.agent).toMatchObject({ name: 'filed', org: 'env-org' })
    expect(shown.config.api.port).toBe(5000)
    expect(shown.config.discovery.mdns).toBe(false)
    expect(shown.config.listen).toEqual(defaultConfig().listen)
  })

  it('show uses MOLT_HOME as the data dir; text mode prints the JSON', async () => {
    const dir = await tempDir()
    const result = await molt(['config', 'show'], { MOLT_HOME: dir, MOLT_API_PORT: '7411' })
    expect(result.code, result.stderr).toBe(0)
    expect(result.stdout).toContain(join(dir, 'config.json'))
    expect(result.stdout).toContain('"port": 7411')
  })

  it('an invalid config file exits 1 naming the field', async () => {
    const dir = await tempDir()
    await writeFile(join(dir, 'config.json'), JSON.stringify({ api: { port: 'eighty' } }))
    const result = await molt(['config', 'show', '--json', '--data-dir', dir], {})
    expect(result.code).toBe(1)
    expect(result.stderr).toContain('api.port')
    expect(JSON.parse(result.stdout).error.message).toContain('api.port')
  })

  it('an invalid MOLT_* variable exits 1 naming the variable and field', async () => {
    const dir = await tempDir()
    const result = await molt(['config', 'show', '--data-dir', dir], { MOLT_REQUIRE_SIGNATURES: 'maybe' })
    expect(result.code).toBe(1)
    expect(result.stderr).toContain('MOLT_REQUIRE_SIGNATURES')
    expect(result.stderr).toContain('speak.requireSignatures')
  })

  it('path prints the config file path; usage errors exit 2; --help exits 0', async () => {
    const dir = await tempDir()
    const path = await molt(['config', 'path', '--data-dir', dir], {})
    expect(path.code).toBe(0)
    expect(path.stdout.trim()).toBe(join(dir, 'config.json'))
    const json = await molt(['config', 'path', '--json', '--data-dir', dir], {})
    expect(JSON.parse(json.stdout)).toEqual({ path: join(dir, 'config.json') })
    expect((await molt(['config', '--data-dir', dir], {})).code).toBe(2)
    expect((await molt(['config', 'frobnicate', '--data-dir', dir], {})).code).toBe(2)
    const help = await molt(['config', '--help'], {})
    expect(help.code).toBe(0)
    expect(help.stdout).toContain('MOLT_RELAYS')
  })
})

describe('health endpoints', () => {
  async function serve (options: Parameters<TestNetwork['node']>[0] = {}): Promise<string> {
    const node = await net.node(options)
    const server = await startApiServer(node, { token: await loadOrCreateApiToken(node.dataDir) })
    servers.push(server)
    return server.url
  }

  it('a normal node: /health ok, /health/ready 200, /v1/health still public', async () => {
    const url = await serve()
    const live = await fetch(`${url}/health`)
    expect(live.status).toBe(200)
    expect(await live.json()).toEqual({ status: 'ok' })
    const ready = await fetch(`${url}/health/ready`)
    expect(ready.status).toBe(200)
    expect(await ready.json()).toEqual({
      status: 'ready',
      checks: { started: true, listening: 1, storage: true, relays: { configured: 0, reserved: 0 } }
    })
    const v1 = await fetch(`${url}/v1/health`)
    expect(v1.status).toBe(200)
    expect((await v1.json()).status).toBe('ok')
  })

  it('503 not-ready when a configured relay is unreachable', async () => {
    const relay = `/ip4/127.0.0.1/tcp/${await closedPort()}/p2p/${await randomPeerId()}`
    const url = await serve({ relays: [relay] })
    const ready = await fetch(`${url}/health/ready`)
    expect(ready.status).toBe(503)
    const body = await ready.json()
    expect(body.status).toBe('not-ready')
    expect(body.checks).toMatchObject({ started: true, storage: true, relays: { configured: 1, reserved: 0 } })
    expect(body.checks.listening).toBeGreaterThan(0)
    // liveness does not depend on readiness
    expect((await fetch(`${url}/health`)).status).toBe(200)
  })

  it('503 once the node is stopped', async () => {
    const node = await net.node()
    const server = await startApiServer(node, { token: await loadOrCreateApiToken(node.dataDir) })
    servers.push(server)
    await node.stop()
    const ready = await fetch(`${server.url}/health/ready`)
    expect(ready.status).toBe(503)
    expect(await ready.json()).toMatchObject({ status: 'not-ready', checks: { started: false, storage: false } })
  })
})

describe('systemd units', () => {
  const root = fileURLToPath(new URL('../../', import.meta.url))
  const units = ['deploy/molt-agent.service', 'deploy/molt-relay.service']

  it('pass systemd-analyze verify', () => {
    const probe = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' })
    if (probe.error != null) throw new Error(`systemd-analyze is needed to check deploy/*.service and is not installed: ${probe.error.message}`)
    // ExecStart is /usr/bin/env (which verify requires to exist), so the units are checked as shipped
    const result = spawnSync('systemd-analyze', ['verify', ...units], { cwd: root, encoding: 'utf8' })
    expect(result.status, `${result.stdout}${result.stderr}`).toBe(0)
    expect(result.stderr.trim()).toBe('')
  })
})

describe('molt agent honours MOLT_* variables', () => {
  it('takes its name, org and API port from the environment', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'molt-env-'))
    const child = spawn(process.execPath, [join(import.meta.dirname, '..', '..', 'dist/src/cli/main.js'), 'agent', '--no-mdns', '--listen', '/ip4/127.0.0.1/tcp/0', '--json', '--data-dir', dir], {
      env: { ...process.env, MOLT_AGENT_NAME: 'from-env', MOLT_AGENT_ORG: 'envorg' },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    try {
      const line = await new Promise<string>((resolve, reject) => {
        createInterface({ input: child.stdout! }).once('line', resolve)
        child.once('exit', (code) => { reject(new Error(`agent exited with ${code}`)) })
      })
      const listening = JSON.parse(line)
      const identity = await (await fetch(`http://127.0.0.1:${listening.apiPort}/v1/identity`, {
        headers: { authorization: `Bearer ${(await readFile(join(dir, 'api-token'), 'utf8')).trim()}` }
      })).json()
      expect(identity.agent).toMatchObject({ name: 'from-env', org: 'envorg' })
    } finally {
      child.kill('SIGTERM')
      await new Promise(resolve => child.once('exit', resolve))
      await rm(dir, { recursive: true, force: true })
    }
  }, 30_000)
})
