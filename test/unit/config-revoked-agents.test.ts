/** config.json `trust.revokedAgents` (protocols/identity.md, "Refusing revoked agents"): default, values, a clear error */
import { describe, it, expect } from 'vitest'
import { parseConfig } from '../../src/config/index.js'

describe('trust.revokedAgents', () => {
  it('defaults to flag and takes flag or refuse', () => {
    expect(parseConfig({}).trust.revokedAgents).toBe('flag')
    expect(parseConfig({ trust: { revokedAgents: 'refuse' } }).trust.revokedAgents).toBe('refuse')
    expect(parseConfig({ trust: { revokedAgents: 'flag', orgs: [] } }).trust.revokedAgents).toBe('flag')
  })

  it('anything else is refused with the field named', () => {
    for (const value of ['drop', true, 1, null]) {
      expect(() => parseConfig({ trust: { revokedAgents: value } })).toThrow(expect.objectContaining({ name: 'ConfigError', field: 'trust.revokedAgents', message: expect.stringMatching(/must be flag or refuse/) }))
    }
  })
})
