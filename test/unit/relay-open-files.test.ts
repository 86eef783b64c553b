import { describe, it, expect } from 'vitest'
import { askedReservations, fitOpenFiles, openFilesNeeded, type OpenFilesCap } from '../../src/relay/open-files.js'
import { MAX_RESERVATIONS, MIN_CAPPED_RESERVATIONS, OPEN_FILES_BESIDE_CONNECTIONS, OPEN_FILES_HEADROOM } from '../../src/relay/constants.js'
import { resolveRelayLimits } from '../../src/relay/limits.js'

/** fitOpenFiles() with `limit` as the process's open-file limit; the warnings it gave */
async function fit (limit: number | undefined, init: { maxReservations?: number } = {}, asked = init.maxReservations !== undefined): Promise<{ limits: Awaited<ReturnType<typeof fitOpenFiles>>, warnings: OpenFilesCap[] }> {
  const warnings: OpenFilesCap[] = []
  const limits = await fitOpenFiles(init, asked, { readLimit: async () => limit, warn: (cap) => { warnings.push(cap) } })
  return { limits, warnings }
}

describe('relay open-file limit', () => {
  it('leaves the limits alone when they fit, or when the limit cannot be read', async () => {
    for (const limit of [524_288, undefined]) {
      const { limits, warnings } = await fit(limit)
      expect(limits).toEqual(resolveRelayLimits())
      expect(warnings).toEqual([])
    }
    // the reservations fit exactly: kept, and the derived maxConnections (2 per reservation) bounded by the limit
    const exact = openFilesNeeded(MAX_RESERVATIONS)
    const { limits, warnings } = await fit(exact)
    expect(limits).toEqual({ ...resolveRelayLimits(), maxConnections: exact - OPEN_FILES_BESIDE_CONNECTIONS })
    expect(warnings).toEqual([])
    // an operator's own maxConnections is theirs
    expect((await fit(exact, { maxConnections: 5000 })).limits.maxConnections).toBe(5000)
  })

  it('caps the default reservations to what the common 1,024-file limit allows, with one warning naming the limit, the cap and the knobs', async () => {
    const { limits, warnings } = await fit(1024)
    const cap = 1024 - OPEN_FILES_HEADROOM
    // maxConnections follows the capped number, as it would for an operator's own, and stays under the limit
    // (the connection manager prunes before the process runs out of descriptors)
    expect(limits).toEqual({ ...resolveRelayLimits({ maxReservations: cap }), maxConnections: 1024 - OPEN_FILES_BESIDE_CONNECTIONS })
    expect(resolveRelayLimits({ maxReservations: cap }).maxConnections).toBeGreaterThan(1024)
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toMatchObject({ limit: 1024, maxReservations: cap, wanted: MAX_RESERVATIONS })
    const needed = openFilesNeeded(MAX_RESERVATIONS)
    expect(warnings[0].message).toContain(`may open 1024 files`)
    expect(warnings[0].message).toContain(`at most ${cap} reservations`)
    expect(warnings[0].message).toContain(`ulimit -n ${needed}`)
    expect(warnings[0].message).toContain(`LimitNOFILE=${needed}`)
    expect(warnings[0].message).toContain('--max-reservations')
  })

  it('refuses an operator\'s own maxReservations that does not fit: they asked for something this process cannot do', async () => {
    await expect(fit(1024, { maxReservations: MAX_RESERVATIONS })).rejects.toMatchObject({
      name: 'RelayOpenFilesError', needed: openFilesNeeded(MAX_RESERVATIONS), limit: 1024, message: expect.stringMatching(/ulimit -n 1280.*LimitNOFILE=1280.*relay\.maxReservations to 768/)
    })
    // one that fits under the same limit starts, unchanged and without a warning
    const { limits, warnings } = await fit(1024, { maxReservations: 768 })
    expect(limits.maxReservations).toBe(768)
    expect(warnings).toEqual([])
  })

  it('refuses when not even the smallest capped relay fits', async () => {
    const limit = openFilesNeeded(MIN_CAPPED_RESERVATIONS) - 1
    await expect(fit(limit)).rejects.toMatchObject({
      name: 'RelayOpenFilesError', limit, needed: openFilesNeeded(MIN_CAPPED_RESERVATIONS), message: expect.stringMatching(/too few for a relay.*ulimit -n 1280.*--max-reservations\) to 63 or fewer/)
    })
    // exactly the minimum fits, capped
    const { limits, warnings } = await fit(limit + 1)
    expect(limits.maxReservations).toBe(MIN_CAPPED_RESERVATIONS)
    expect(warnings).toHaveLength(1)
    // below the headroom there is no number to suggest
    await expect(fit(100)).rejects.toMatchObject({ name: 'RelayOpenFilesError', message: expect.not.stringContaining('or fewer') })
  })

  it('counts a flag or a config value as the operator\'s choice, but not the default `molt relay --init` writes', () => {
    expect(askedReservations(undefined, undefined)).toBe(false)
    expect(askedReservations(undefined, MAX_RESERVATIONS)).toBe(false)
    expect(askedReservations(MAX_RESERVATIONS, undefined)).toBe(true)
    expect(askedReservations(undefined, 2000)).toBe(true)
    expect(askedReservations(500, MAX_RESERVATIONS)).toBe(true)
  })

  it('warns through process.emitWarning unless told otherwise', async () => {
    const seen: Error[] = []
    const onWarning = (w: Error): void => { seen.push(w) }
    process.on('warning', onWarning)
    try {
      const limits = await fitOpenFiles({}, false, { readLimit: async () => 1024 })
      expect(limits.maxReservations).toBe(768)
      await new Promise(resolve => setImmediate(resolve))
    } finally {
      process.off('warning', onWarning)
    }
    expect(seen).toEqual([expect.objectContaining({ code: 'MOLT_RELAY_OPEN_FILES', message: expect.stringContaining('ulimit -n 1280') })])
  })
})
