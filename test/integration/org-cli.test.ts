import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { access, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { CliSandbox, type RunningAgent } from '../support/cli.js'
import { ApiClient } from '../../src/api/index.js'
import { eventually } from '../support/eventually.js'

const sandbox = new CliSandbox()
/** Harness budget per test: each CLI run is a fresh Node process (seconds on a loaded machine); nothing asserts speed */
const SLOW = 180_000
let orgDir: string
let agentDir: string
let orgKey: string
let peerId: string
let certFile: string
let agent: RunningAgent
let address: string

beforeAll(async () => {
  ;[orgDir, agentDir] = await Promise.all([sandbox.dir(), sandbox.dir()])
  const init = await sandbox.call(['init', '--name', 'translator', '--org', 'acme', '--json', '--data-dir', agentDir])
  expect(init.code).toBe(0)
  peerId = JSON.parse(init.stdout).peerId
  certFile = join(orgDir, 'translator.cert.json')
}, 60_000)

afterAll(async () => {
  await sandbox.cleanup()
})

describe('molt org', () => {
  it('init creates the organisation key (0600, under <data-dir>/org) and prints the root to trust', async () => {
    const { code, stdout, stderr } = await sandbox.call(['org', 'init', 'acme', '--json', '--data-dir', orgDir])
    expect(stderr).toBe('')
    expect(code).toBe(0)
    const result = JSON.parse(stdout)
    expect(result).toMatchObject({ org: 'acme', key: expect.stringMatching(/^ed25519:/), path: join(orgDir, 'org', 'acme.key') })
    orgKey = result.key
    expect((await stat(result.path)).mode & 0o777).toBe(0o600)
    // never overwritten: a second init fails and the key stays
    const again = await sandbox.call(['org', 'init', 'acme', '--data-dir', orgDir])
    expect(again.code).toBe(1)
    expect(again.stderr).toMatch(/already exists/)
    expect(JSON.parse(await readFile(result.path, 'utf8')).public_key).toBe(orgKey)
  }, SLOW)

  it('issue signs a certificate for the agent\'s PeerId and writes it to --out', async () => {
    const { code, stdout } = await sandbox.call(['org', 'issue', peerId, '--org', 'acme', '--name', 'translator', '--capabilities', 'translate.text,summarise', '--expires', '30d', '--out', certFile, '--data-dir', orgDir])
    expect(code).toBe(0)
    expect(stdout).toMatch(new RegExp(`certificate [0-9a-f]{32} for translator@acme \\(${peerId}\\) until .* written to`))
    const cert = JSON.parse(await readFile(certFile, 'utf8'))
    expect(cert).toMatchObject({ v: 1, type: 'molt-org-cert', org: 'acme', org_key: orgKey, agent: 'translator', peer_id: peerId, capabilities: ['translate.text', 'summarise'] })
    expect(cert.expires - cert.issued).toBe(30 * 86_400_000)
  }, SLOW)

  it('bad issue and install command lines fail with clear errors and write nothing', async () => {
    const cases: Array<[string[], number, RegExp]> = [
      [['org', 'issue', peerId, '--name', 'x'], 2, /--org <name> and --name/],
      [['org', 'issue', peerId, '--org', 'acme', '--name', 'x', '--expires', '5y'], 2, /--expires must be/],
      [['org', 'issue', peerId, '--org', 'acme', '--name', 'x', '--expires', '9999d'], 2, /at most 730d/],
      [['org', 'issue', 'QmNotAPeer', '--org', 'acme', '--name', 'x'], 1, /not a valid PeerId/],
      [['org', 'issue', peerId, '--org', 'globex', '--name', 'x'], 1, /no organisation key/],
      [['org', 'frobnicate', 'x'], 2, /unknown subcommand/],
      [['org', 'trust', 'acme', 'not-a-key'], 2, /ed25519:/]
    ]
    for (const [args, exit, message] of cases) {
      const { code, stderr } = await sandbox.call([...args, '--data-dir', orgDir])
      expect({ args, code }).toEqual({ args, code: exit })
      expect(stderr).toMatch(message)
    }
    // a certificate for this agent cannot go into another agent's data dir
    const other = await sandbox.dir()
    await sandbox.call(['init', '--data-dir', other])
    const wrong = await sandbox.call(['org', 'install-cert', certFile, '--data-dir', other])
    expect(wrong.code).toBe(1)
    expect(wrong.stderr).toMatch(/not for this agent/)
    await expect(access(join(other, 'org-cert.json'))).rejects.toThrow()
  }, SLOW)

  it('install-cert puts the certificate in the agent\'s data dir, and its card carries it', async () => {
    const { code, stdout } = await sandbox.call(['org', 'install-cert', certFile, '--data-dir', agentDir])
    expect(code).toBe(0)
    expect(stdout).toMatch(/installed certificate [0-9a-f]{32}: translator@acme/)
    agent = await sandbox.agent(agentDir)
    address = agent.listening.addresses[0]
    const own = await sandbox.call(['card', '--json', '--data-dir', agentDir])
    expect(JSON.parse(own.stdout).cert).toMatchObject({ org: 'acme', peer_id: peerId })
   }, SLOW)
})

describe('molt card shows the org verdict', () => {
  it('a viewer that trusts acme sees "verified for acme"; --json carries the verdict', async () => {
    const viewer = await sandbox.dir()
    const trust = await sandbox.call(['org', 'trust', 'acme', orgKey, '--data-dir', viewer])
    expect(trust.code).toBe(0)
    expect(JSON.parse(await readFile(join(viewer, 'config.json'), 'utf8')).trust.orgs).toEqual([{ name: 'acme', key: orgKey }])
    const human = await sandbox.call(['card', address, '--data-dir', viewer])
    expect(human.code).toBe(0)
    expect(human.stdout).toContain('Agent     translator@acme')
    expect(human.stdout).toMatch(/^Org {7}verified for acme$/m)
    const json = await sandbox.call(['card', address, '--json', '--data-dir', viewer])
    expect(JSON.parse(json.stdout).org_verdict).toMatchObject({ org: 'acme', verified: true, code: 'verified', agent: 'translator' })
  }, SLOW)

  it('a viewer that does not trust acme sees the claim unverified, and why', async () => {
    const viewer = await sandbox.dir()
    const human = await sandbox.call(['card', address, '--data-dir', viewer])
    expect(human.code).toBe(0)
    expect(human.stdout).toMatch(/^Org {7}org acme unverified: org acme is not a trusted organisation/m)
    const json = await sandbox.call(['card', address, '--json', '--data-dir', viewer])
    expect(JSON.parse(json.stdout).org_verdict).toMatchObject({ org: 'acme', verified: false, code: 'unknown_org' })
  }, SLOW)

  it('after molt org revoke and import-revocation, the trusting viewer sees the certificate revoked', async () => {
    const viewer = await sandbox.dir()
    expect((await sandbox.call(['org', 'trust', 'acme', orgKey, '--data-dir', viewer])).code).toBe(0)
    const revocationFile = join(orgDir, 'translator.revocation.json')
    const revoke = await sandbox.call(['org', 'revoke', certFile, '--org', 'acme', '--reason', 'key leaked', '--out', revocationFile, '--data-dir', orgDir])
    expect(revoke.code).toBe(0)
    const serial = JSON.parse(await readFile(certFile, 'utf8')).serial
    expect(JSON.parse(await readFile(revocationFile, 'utf8'))).toMatchObject({ type: 'molt-org-revocation', org: 'acme', serial, reason: 'key leaked' })
    // a viewer that does not trust acme cannot import it: it would count for nothing
    const stranger = await sandbox.call(['org', 'import-revocation', revocationFile, '--data-dir', await sandbox.dir()])
    expect(stranger.code).toBe(1)
    expect(stranger.stderr).toMatch(/not signed by a trusted key of acme/)
    const imported = await sandbox.call(['org', 'import-revocation', revocationFile, '--data-dir', viewer])
    expect(imported.code).toBe(0)
    expect(imported.stdout).toContain(`imported the revocation of certificate ${serial} of acme`)
    const json = await sandbox.call(['card', address, '--json', '--data-dir', viewer])
    expect(JSON.parse(json.stdout).org_verdict).toMatchObject({ org: 'acme', verified: false, code: 'revoked' })
  }, SLOW)
})

describe('molt org revoke with a running agent', () => {
  it('publishes the revocation through the agent: it holds it as trusted, and it reaches the agent it is connected to by gossip', async () => {
    // the organisation's own agent runs on the org's data dir, trusts acme, and is connected to the translator
    expect((await sandbox.run(['org', 'trust', 'acme', orgKey, '--data-dir', orgDir])).code).toBe(0)
    const orgAgent = await sandbox.agent(orgDir, ['--bootstrap', address])
    const api = async (dir: string, port: number): Promise<ApiClient> => new ApiClient({ url: `http://127.0.0.1:${port}`, token: (await readFile(join(dir, 'api-token'), 'utf8')).trim() })
    const orgApi = await api(orgDir, orgAgent.listening.apiPort)
    const translatorApi = await api(agentDir, agent.listening.apiPort)
    try {
      // connected (gossipsub exchanges subscriptions when the connection opens; the CLI below starts long after)
      await eventually(async () => (await orgApi.peers()).peers.some(p => p.peerId === peerId && p.status === 'connected'), 60_000, 'the org agent connected to the translator')
      const serial = JSON.parse(await readFile(certFile, 'utf8')).serial
      const revoke = await sandbox.run(['org', 'revoke', serial, '--org', 'acme', '--reason', 'rotated', '--json', '--data-dir', orgDir])
      expect(revoke.stderr).toBe('')
      expect(revoke.code).toBe(0)
      const result = JSON.parse(revoke.stdout)
      expect(result).toMatchObject({ published: true, trusted: true, revocation: { serial, reason: 'rotated' } })
      const held = async (client: ApiClient): Promise<boolean> => (await client.trust<{ revocations: any[] }>('GET', '/org-revocations')).revocations.some(r => r.sig === result.revocation.sig)
      expect(await held(orgApi)).toBe(true)
      // the translator does not trust acme: it carries the revocation on (bounded), which is how it reaches nodes that do
      await eventually(async () => held(translatorApi), 60_000, 'the revocation at the translator')
    } finally {
      await orgAgent.stop()
    }
  }, SLOW)
})
