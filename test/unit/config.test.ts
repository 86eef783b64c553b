import { describe, it, expect } from 'vitest'
import { parseConfig, defaultConfig, resolveDataDir } from '../../src/config/index.js'
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

  it('resolves the data dir: flag, then MOLT_HOME, then ~/.molt', () => {
    expect(resolveDataDir('x', { MOLT_HOME: '/m' })).toBe(resolve('x'))
    expect(resolveDataDir(undefined, { MOLT_HOME: '/m' })).toBe('/m')
    expect(resolveDataDir(undefined, {})).toBe(join(homedir(), '.molt'))
  })
})
