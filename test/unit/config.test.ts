import { describe, it, expect } from 'vitest'
import { parseConfig, defaultConfig, resolveDataDir, loadConfig } from '../../src/config/index.js'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'

describe('config', () => {
  it('fills every default from an empty object', () => {
    expect(parseConfig({}, 'agent-x')).toEqual(defaultConfig('agent-x'))
  })

  it('names the offending field', () => {
    const cases: Array<[unknown, string]> = [
      [{ agent: { name: 'has space' } }, 'agent.name'],
      [{ agent: { org: 'x'.repeat(129) } }, 'agent.org'],
      [{ agent: { capabilities: 'translate' } }, 'agent.capabilities'],
      [{ listen: ['tcp/1'] }, 'listen'],
      [{ api: { port: 70000 } }, 'api.port'],
      [{ speak: { requireSignatures: 'yes' } }, 'speak.requireSignatures']
    ]
    for (const [raw, field] of cases) {
      expect(() => parseConfig(raw)).toThrow(expect.objectContaining({ name: 'ConfigError', field }))
    }
    expect(() => parseConfig([])).toThrow(expect.objectContaining({ name: 'ConfigError' }))
  })

  it('names the field and says its rule, for every kind of bad field', () => {
    const ED = `ed25519:${'A'.repeat(43)}=`
    const cases: Array<[raw: unknown, field: string, message: RegExp]> = [
      // a section that is not an object
      [{ api: 7 }, 'api', /^config\.json: api must be an object$/],
      [{ discovery: [] }, 'discovery', /discovery must be an object/],
      // wrong type, and out of range
      [{ discovery: { mdns: 'no' } }, 'discovery.mdns', /discovery\.mdns must be true or false/],
      [{ api: { port: -1 } }, 'api.port', /api\.port must be an integer 0-65535/],
      [{ api: { port: 1.5 } }, 'api.port', /must be an integer/],
      // a pattern
      [{ agent: { org: '' } }, 'agent.org', /agent\.org must be 1-128 characters/],
      // an enum
      [{ log: { level: 'loud' } }, 'log.level', /log\.level must be one of error, warn, info, debug/],
      [{ trust: { inbox: { threshold: 0.5, action: 'drop' } } }, 'trust.inbox.action', /must be hold or refuse/],
      // a required field of an optional section
      [{ trust: { inbox: { action: 'hold' } } }, 'trust.inbox.threshold', /must be a number 0\.\.1/],
      // an entry of a list: the field is the list, the message says which entry
      [{ relays: ['/ip4/127.0.0.1/tcp/1'] }, 'relays', /relays\[0\] must be an array of multiaddrs ending in \/p2p\//],
      [{ trust: { orgs: [{ name: 'acme', key: ED }, { name: 'x', key: 'rsa:1' }] } }, 'trust.orgs', /trust\.orgs\[1\]\.key must be an array of at most 256/],
      [{ trust: { orgs: Array.from({ length: 257 }, () => ({ name: 'a', key: ED })) } }, 'trust.orgs', /at most 256/],
      // the relay's limits, bounded per field, and its mailbox: false or limits
      [{ relay: { maxReservations: 0 } }, 'relay.maxReservations', /between 1 and 1000000/],
      [{ relay: { mailbox: { retentionMs: 0 } } }, 'relay.mailbox.retentionMs', /must be a whole number ≥ 1/],
      [{ relay: { mailbox: { maxSenderShare: 1.5 } } }, 'relay.mailbox.maxSenderShare', /must be a number in \(0, 1\]/],
      [{ relay: { mailbox: true } }, 'relay.mailbox', /must be false or an object of mailbox limits/]
    ]
    for (const [raw, field, message] of cases) {
      let error: any
      try { parseConfig(raw) } catch (err) { error = err }
      expect(error, JSON.stringify(raw).slice(0, 80)).toMatchObject({ name: 'ConfigError', field })
      expect(error.message).toMatch(message)
    }
  })

  it('keeps what the file says, fills the rest, and ignores fields it does not know', () => {
    const config = parseConfig({ agent: { org: 'acme', extra: 1 }, relay: { mailbox: false, maxReservations: 5 }, future: { x: 1 } }, 'bob')
    expect(config.agent).toEqual({ name: 'bob', org: 'acme', capabilities: [] })
    expect(config.relay).toEqual({ mailbox: false, maxReservations: 5 })
    expect(config).not.toHaveProperty('future')
    expect(parseConfig({ agent: { name: 'alice' } }, 'bob').agent.name).toBe('alice')
    // defaults are fresh copies: changing one config does not change the next
    parseConfig({}).listen.push('/ip4/127.0.0.1/tcp/1')
    expect(parseConfig({}).listen).toEqual(defaultConfig().listen)
  })

  it('loadConfig names the file in its errors', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'molt-config-'))
    try {
      await writeFile(join(dir, 'config.json'), JSON.stringify({ speak: { requireSignatures: 1 } }))
      await expect(loadConfig(dir)).rejects.toMatchObject({ name: 'ConfigError', field: 'speak.requireSignatures', message: `${join(dir, 'config.json')}: speak.requireSignatures must be true or false` })
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('resolves the data dir: flag, then MOLT_HOME, then ~/.molt', () => {
    expect(resolveDataDir('x', { MOLT_HOME: '/m' })).toBe(resolve('x'))
    expect(resolveDataDir(undefined, { MOLT_HOME: '/m' })).toBe('/m')
    expect(resolveDataDir(undefined, {})).toBe(join(homedir(), '.molt'))
  })
})
