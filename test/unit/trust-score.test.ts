import { describe, it, expect } from 'vitest'
import { TrustModel, scorePeer, type Signal } from '../../src/services/trust/model/index.js'

const day = 86_400_000
const NOW = 1_750_000_000_000
let n = 0
const id = (): string => (n++).toString(16).padStart(64, '0')

function endorse (issuer: string, subject: string, strength = 'strong', extra: Partial<Signal> = {}): Signal {
  return { id: id(), issuer, subject, type: 'endorsement', strength, issued: NOW - day, expires: NOW + 300 * day, ...extra }
}
function warn (issuer: string, subject: string, severity = 'high', extra: Partial<Signal> = {}): Signal {
  return { id: id(), issuer, subject, type: 'warning', severity, issued: NOW - day, expires: NOW + 300 * day, ...extra }
}

/** Deterministic pseudo-random numbers (mulberry32) */
function rng (seed: number): () => number {
  return () => {
    seed = (seed + 0x6D2B79F5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

describe('trust score', () => {
  it('no evidence is 0.5 with zero confidence', () => {
    const s = scorePeer({ self: 'me', signals: [] }, 'x', { now: NOW })
    expect(s.score).toBe(0.5)
    expect(s.confidence).toBe(0)
    expect(s.band).toBe('moderate')
  })

  it('endorsements from pre-trusted issuers raise a score; warnings lower it', () => {
    const signals = [endorse('p1', 'good'), endorse('p2', 'good'), endorse('p3', 'good'), warn('p1', 'bad'), warn('p2', 'bad')]
    const m = new TrustModel({ self: 'me', preTrusted: ['p1', 'p2', 'p3'], signals })
    const good = m.score('good', { now: NOW })
    expect(good.score).toBeGreaterThan(0.7)
    expect(good.band).toBe('good')
    expect(good.explain[0].source).toBe('attestation')
    expect(m.score('bad', { now: NOW }).score).toBeLessThan(0.4)
  })

  it('is deterministic: same signals in any order give the same score', () => {
    const r = rng(7)
    const peers = Array.from({ length: 30 }, (_, i) => `n${i}`)
    const signals: Signal[] = []
    for (let i = 0; i < 300; i++) {
      const a = peers[Math.floor(r() * 30)]
      const b = peers[Math.floor(r() * 30)]
      if (a !== b) signals.push(r() < 0.8 ? endorse(a, b) : warn(a, b))
    }
    const one = new TrustModel({ self: 'n0', preTrusted: ['n1'], signals }).score('n5', { now: NOW })
    const two = new TrustModel({ self: 'n0', preTrusted: ['n1'], signals: [...signals].reverse() }).score('n5', { now: NOW })
    expect(two).toEqual(one)
  })

  it('decays over simulated time, negative evidence more slowly than positive', () => {
    const m = new TrustModel({ self: 'me', preTrusted: ['p'], signals: [endorse('p', 'x', 'exceptional', { expires: NOW + 700 * day }), warn('p', 'y', 'critical', { expires: NOW + 700 * day })] })
    const x0 = m.score('x', { now: NOW }).score
    const x90 = m.score('x', { now: NOW + 90 * day }).score
    const x360 = m.score('x', { now: NOW + 360 * day }).score
    expect(x0).toBeGreaterThan(x90)
    expect(x90).toBeGreaterThan(x360)
    expect(x360).toBeGreaterThan(0.5)
    const y0 = m.score('y', { now: NOW }).score
    const y180 = m.score('y', { now: NOW + 180 * day }).score
    expect(y180).toBeGreaterThan(y0)
    expect(y180).toBeLessThan(0.5)
    // after 180 days the positive evidence kept 25 % of its weight, the negative 50 %
    expect(0.5 - y180).toBeGreaterThan(x360 - 0.5)
    // an expired record stops counting
    expect(m.score('x', { now: NOW + 701 * day }).score).toBe(0.5)
  })

  it('is monotone: one more honest positive attestation never lowers a score (random graphs)', () => {
    const r = rng(42)
    for (let trial = 0; trial < 150; trial++) {
      const size = 4 + Math.floor(r() * 12)
      const peers = Array.from({ length: size }, (_, i) => `n${i}`)
      const signals: Signal[] = []
      for (let i = 0; i < size * 3; i++) {
        const a = peers[Math.floor(r() * size)]
        const b = peers[Math.floor(r() * size)]
        if (a === b) continue
        const strength = ['weak', 'moderate', 'strong', 'exceptional'][Math.floor(r() * 4)]
        signals.push(r() < 0.75 ? endorse(a, b, strength, { issued: NOW - Math.floor(r() * 200) * day }) : warn(a, b, 'medium'))
      }
      const subject = peers[1 + Math.floor(r() * (size - 1))]
      const issuer = peers.filter(p => p !== subject)[Math.floor(r() * (size - 1))]
      const input = { self: 'n0', preTrusted: [peers[size - 1]], signals }
      const before = new TrustModel(input).score(subject, { now: NOW })
      const after = new TrustModel({ ...input, signals: [...signals, endorse(issuer, subject, 'moderate')] }).score(subject, { now: NOW })
      expect(after.score, `trial ${trial}`).toBeGreaterThanOrEqual(before.score)
    }
  })

  it('50 Sybils endorsing each other and an attacker do not lift it above 0.55 (honest view)', () => {
    const honest = Array.from({ length: 10 }, (_, i) => `h${i}`)
    const sybils = Array.from({ length: 50 }, (_, i) => `s${i}`)
    const signals: Signal[] = []
    // an honest web: everyone endorses a few others
    honest.forEach((h, i) => { for (let k = 1; k <= 3; k++) signals.push(endorse(h, honest[(i + k) % honest.length])) })
    // the Sybil ring: each endorses the next five and the attacker, exceptionally
    sybils.forEach((s, i) => {
      for (let k = 1; k <= 5; k++) signals.push(endorse(s, sybils[(i + k) % sybils.length], 'exceptional'))
      signals.push(endorse(s, 'attacker', 'exceptional'))
      signals.push(endorse('attacker', s, 'exceptional'))
    })
    const view = new TrustModel({ self: 'h0', preTrusted: ['h1'], signals })
    const attacker = view.score('attacker', { now: NOW })
    expect(attacker.score).toBeLessThan(0.55)
    // an honest agent endorsed by three honest peers ranks above it
    expect(view.score('h4', { now: NOW }).score).toBeGreaterThan(attacker.score)

    // still bounded when one careless honest peer endorses one Sybil
    const careless = new TrustModel({ self: 'h0', preTrusted: ['h1'], signals: [...signals, endorse('h3', 's0', 'moderate')] })
    const lifted = careless.score('attacker', { now: NOW })
    expect(lifted.score).toBeLessThan(0.6)
    expect(view.score('h4', { now: NOW }).score).toBeGreaterThan(0.7)
  })

  it('damps mutual endorsements and caps unknown issuers together', () => {
    const base = [endorse('p', 'a', 'strong')]
    const plain = new TrustModel({ self: 'me', preTrusted: ['p'], signals: [...base, endorse('me', 'b', 'strong')] }).score('b', { now: NOW })
    const mutual = new TrustModel({ self: 'me', preTrusted: ['p'], signals: [...base, endorse('me', 'b', 'strong'), endorse('b', 'me', 'strong')] }).score('b', { now: NOW })
    expect(mutual.score).toBeLessThan(plain.score)
    const crowd = Array.from({ length: 200 }, (_, i) => endorse(`u${i}`, 'z', 'exceptional'))
    const z = new TrustModel({ self: 'me', signals: crowd }).score('z', { now: NOW })
    expect(z.positive).toBeLessThanOrEqual(0.1)
  })

  it('scores per domain: other domains do not count, general records count half', () => {
    const m = new TrustModel({ self: 'me', preTrusted: ['p', 'q'], signals: [endorse('p', 'x', 'strong', { domain: 'translate' }), endorse('q', 'x', 'strong')] })
    const translate = m.score('x', { now: NOW, domain: 'translate' })
    const weather = m.score('x', { now: NOW, domain: 'weather' })
    expect(translate.score).toBeGreaterThan(weather.score)
    expect(weather.score).toBeGreaterThan(0.5)
  })
})
