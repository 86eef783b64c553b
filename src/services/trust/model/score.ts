import {
  BANDS, COMPLETED_BASE, COMPLETED_PER_RATING, COMPLETED_UNRATED, DEFAULT_SCORE_PARAMS, INCIDENT_FACTOR,
  OUTCOME_WEIGHT, SEVERITY_WEIGHT, STRENGTH_WEIGHT, type ScoreParams, type TrustBand
} from './params.js'

/** One attestation as the score sees it (pure data: no signature, no I/O) */
export interface Signal {
  id: string
  /** PeerId strings */
  issuer: string
  subject: string
  type: 'endorsement' | 'task_completion' | 'warning' | 'incident_report'
  domain?: string
  strength?: string
  severity?: string
  outcome?: string
  quality_rating?: number
  issued: number
  expires: number
}

/** What this node saw itself of one peer: counts of exchanges, already decayed to `at` */
export interface Experience {
  success: number
  failure: number
  /** Unix ms the counts are valid at */
  at: number
}

export interface ScoreInput {
  /** The node whose view this is */
  self: string
  /** Peers trusted from the start (config `trust.preTrusted`) */
  preTrusted?: readonly string[]
  /** Valid, unrevoked signals (expired ones are ignored at `now`) */
  signals: Iterable<Signal>
  /** This node's own observations, by peer */
  experience?: ReadonlyMap<string, Experience>
  params?: Partial<ScoreParams>
}

export interface ScoreOptions {
  /** Score for this domain/capability only (records without a domain count half) */
  domain?: string
  /** Unix ms to score at. @default Date.now() */
  now?: number
}

export interface Contribution {
  source: 'attestation' | 'direct' | 'unknown-issuers'
  /** attestation id */
  id?: string
  issuer?: string
  type?: string
  domain?: string
  /** The issuer's weight from this node's view (0..1) */
  issuerWeight?: number
  /** Evidence added: positive for, negative against */
  value: number
}

export interface TrustScore {
  peer: string
  domain?: string
  /** 0..1; 0.5 = no evidence either way */
  score: number
  /** 0..1: how much evidence, from how many (trusted) issuers, how recent */
  confidence: number
  band: TrustBand
  confidenceBand: 'low' | 'medium' | 'high'
  /** Evidence for and against, after weighting and decay */
  positive: number
  negative: number
  /** The main contributions, largest first */
  explain: Contribution[]
}

interface Edge { to: number, weight: number }

/**
 * A node's trust model over a fixed set of signals. Building it aggregates
 * the signals into a graph; `score()` then runs a personalised EigenTrust
 * per subject. Everything is a pure function of the input and `now`:
 * same input, same scores (iteration orders are sorted).
 */
export class TrustModel {
  readonly params: ScoreParams
  private readonly self: string
  private readonly preTrusted: Set<string>
  private readonly signals: Signal[]
  private readonly experience: ReadonlyMap<string, Experience>
  /** Per subject, its signals sorted by id */
  private readonly bySubject = new Map<string, Signal[]>()

  constructor (input: ScoreInput) {
    this.params = { ...DEFAULT_SCORE_PARAMS, ...input.params }
    this.self = input.self
    this.preTrusted = new Set((input.preTrusted ?? []).filter(p => p !== input.self))
    this.signals = [...input.signals].sort((a, b) => a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
    this.experience = input.experience ?? new Map()
    for (const s of this.signals) {
      if (s.issuer === s.subject) continue
      const list = this.bySubject.get(s.subject) ?? []
      list.push(s)
      this.bySubject.set(s.subject, list)
    }
  }

  /** Every peer some signal is about */
  subjects (): string[] {
    return [...this.bySubject.keys()].sort()
  }

  score (peer: string, options: ScoreOptions = {}): TrustScore {
    const now = options.now ?? Date.now()
    const p = this.params
    const trust = this.issuerTrust(peer, now)
    const contributions: Contribution[] = []
    let positive = 0
    let negative = 0
    let recent = 0
    const issuerWeights = new Map<string, number>()
    // the subject's own endorsements of others: a record back from one of them is mutual
    const endorsedBySubject = this.endorsedBy(peer, now)

    // group by issuer and polarity, largest first, for the independence factor
    const groups = new Map<string, Array<{ s: Signal, value: number }>>()
    for (const s of this.bySubject.get(peer) ?? []) {
      if (s.expires <= now) continue
      const raw = this.evidence(s, now, options.domain)
      if (raw === 0) continue
      const key = `${s.issuer}/${raw > 0 ? '+' : '-'}`
      const group = groups.get(key) ?? []
      group.push({ s, value: raw })
      groups.set(key, group)
    }
    let unknownPositive = 0
    let unknownNegative = 0
    for (const key of [...groups.keys()].sort()) {
      const group = groups.get(key) as Array<{ s: Signal, value: number }>
      group.sort((a, b) => Math.abs(b.value) - Math.abs(a.value) || (a.s.id < b.s.id ? -1 : 1))
      group.forEach(({ s, value }, k) => {
        const weight = trust(s.issuer)
        const mutual = value > 0 && endorsedBySubject.has(s.issuer) ? p.mutualDamping : 1
        const v = value * mutual / (1 + p.independence * k)
        if (weight === undefined) {
          // unknown issuers: a fixed small weight each, capped together below
          const u = v * p.unknownIssuerWeight
          if (u > 0) unknownPositive += u
          else unknownNegative -= u
          return
        }
        const contribution = v * weight
        if (contribution === 0) return
        if (contribution > 0) positive += contribution
        else negative -= contribution
        if (now - s.issued <= p.recentWindow) recent += Math.abs(contribution)
        issuerWeights.set(s.issuer, Math.max(issuerWeights.get(s.issuer) ?? 0, weight))
        contributions.push({ source: 'attestation', id: s.id, issuer: s.issuer, type: s.type, ...(s.domain !== undefined ? { domain: s.domain } : {}), issuerWeight: round(weight), value: contribution })
      })
    }
    const unknownPos = Math.min(unknownPositive, p.unknownIssuerCap)
    const unknownNeg = Math.min(unknownNegative, p.unknownIssuerCap)
    positive += unknownPos
    negative += unknownNeg
    if (unknownPos > 0) contributions.push({ source: 'unknown-issuers', value: unknownPos })
    if (unknownNeg > 0) contributions.push({ source: 'unknown-issuers', value: -unknownNeg })

    const direct = this.direct(peer, now)
    if (direct.positive > 0 || direct.negative > 0) {
      positive += direct.positive
      negative += direct.negative
      recent += direct.positive + direct.negative
      issuerWeights.set(this.self, 1)
      contributions.push({ source: 'direct', issuer: this.self, issuerWeight: 1, value: direct.positive - direct.negative })
    }

    const score = (positive + p.prior) / (positive + negative + 2 * p.prior)
    let diversity = 0
    for (const w of issuerWeights.values()) diversity += w
    const volume = positive + negative
    const confidence = 0.5 * Math.min(1, Math.log10(1 + volume) / Math.log10(1 + p.confidenceVolume)) +
      0.3 * Math.min(1, diversity / p.confidenceIssuers) +
      0.2 * Math.min(1, recent / p.confidenceRecent)
    contributions.sort((a, b) => Math.abs(b.value) - Math.abs(a.value) || ((a.id ?? a.source) < (b.id ?? b.source) ? -1 : 1))
    return {
      peer,
      ...(options.domain !== undefined ? { domain: options.domain } : {}),
      score: round(score),
      confidence: round(confidence),
      band: bandOf(score),
      confidenceBand: confidence < 0.3 ? 'low' : confidence <= 0.7 ? 'medium' : 'high',
      positive: round(positive),
      negative: round(negative),
      explain: contributions.slice(0, p.explainLimit).map(c => ({ ...c, value: round(c.value) }))
    }
  }

  /**
   * Signed evidence of one signal at `now`: magnitude × decay × domain factor,
   * positive for, negative against
   */
  evidence (s: Signal, now: number, domain?: string): number {
    const p = this.params
    let value: number
    switch (s.type) {
      case 'endorsement': value = STRENGTH_WEIGHT[s.strength ?? ''] ?? 0; break
      case 'warning': value = -(SEVERITY_WEIGHT[s.severity ?? ''] ?? 0); break
      case 'incident_report': value = -(SEVERITY_WEIGHT[s.severity ?? ''] ?? 0) * INCIDENT_FACTOR; break
      case 'task_completion':
        value = s.outcome === 'completed'
          ? (s.quality_rating !== undefined ? COMPLETED_BASE + COMPLETED_PER_RATING * s.quality_rating : COMPLETED_UNRATED)
          : -(OUTCOME_WEIGHT[s.outcome ?? ''] ?? 0)
        break
      default: value = 0
    }
    if (domain !== undefined && s.domain !== domain) {
      if (s.domain === undefined) value *= p.generalDomainFactor
      else value = value < 0 ? value * p.otherDomainNegativeFactor : 0
    }
    const age = Math.max(0, now - s.issued)
    return value * Math.pow(0.5, age / (value >= 0 ? p.positiveHalfLife : p.negativeHalfLife))
  }

  /** This node's direct experience of `peer`, decayed to `now` */
  private direct (peer: string, now: number): { positive: number, negative: number } {
    const e = this.experience.get(peer)
    if (e === undefined) return { positive: 0, negative: 0 }
    const p = this.params
    const age = Math.max(0, now - e.at)
    return {
      positive: e.success * p.directSuccess * Math.pow(0.5, age / p.positiveHalfLife),
      negative: e.failure * p.directFailure * Math.pow(0.5, age / p.negativeHalfLife)
    }
  }

  /** Peers the subject vouched for (positive evidence), for mutual-endorsement damping */
  private endorsedBy (subject: string, now: number): Set<string> {
    const out = new Set<string>()
    for (const s of this.signals) {
      if (s.issuer === subject && s.expires > now && this.evidence(s, now) > 0) out.add(s.subject)
    }
    return out
  }

  /**
   * Issuer weights from this node's view when scoring `subject`: personalised
   * EigenTrust over the graph *without the edges into the subject*. So nothing
   * said about the subject changes who is trusted to speak about it (one more
   * positive record can only add), and trust cannot flow back to the subject's
   * endorsers through the subject. Returns undefined for unknown issuers
   * (no trust mass reaches them).
   */
  private issuerTrust (subject: string, now: number): (issuer: string) => number | undefined {
    const p = this.params
    // nodes and aggregated edge weights (issuer → subject), mutual edges damped
    const index = new Map<string, number>()
    const names: string[] = []
    const node = (id: string): number => {
      let i = index.get(id)
      if (i === undefined) {
        i = names.length
        index.set(id, i)
        names.push(id)
      }
      return i
    }
    node(this.self)
    for (const id of [...this.preTrusted].sort()) node(id)
    const pair = new Map<string, { from: string, to: string, values: number[] }>()
    for (const s of this.signals) {
      if (s.subject === subject || s.expires <= now) continue
      const key = `${s.issuer}\n${s.subject}`
      const entry = pair.get(key) ?? { from: s.issuer, to: s.subject, values: [] }
      entry.values.push(this.evidence(s, now))
      pair.set(key, entry)
    }
    const raw = new Map<string, number>()
    for (const [key, { values }] of pair) {
      raw.set(key, aggregate(values, p.independence))
    }
    // this node's own experience is its outgoing evidence too
    for (const [peer] of [...this.experience].sort((a, b) => a[0] < b[0] ? -1 : 1)) {
      if (peer === subject || peer === this.self) continue
      const d = this.direct(peer, now)
      const key = `${this.self}\n${peer}`
      raw.set(key, (raw.get(key) ?? 0) + d.positive - d.negative)
      if (!pair.has(key)) pair.set(key, { from: this.self, to: peer, values: [] })
    }
    const rows = new Map<number, Edge[]>()
    for (const key of [...raw.keys()].sort()) {
      let w = raw.get(key) as number
      if (w <= 0) continue
      const { from, to } = pair.get(key) as { from: string, to: string }
      if ((raw.get(`${to}\n${from}`) ?? 0) > 0) w *= p.mutualDamping
      const i = node(from)
      const row = rows.get(i) ?? []
      row.push({ to: node(to), weight: w })
      rows.set(i, row)
    }
    const n = names.length
    // restart vector: this node and the pre-trusted peers
    const restart = new Float64Array(n)
    const pre = [...this.preTrusted].sort()
    const selfShare = pre.length === 0 ? 1 : p.selfRestartShare
    restart[0] = selfShare
    for (const id of pre) restart[index.get(id) as number] += (1 - selfShare) / pre.length
    // normalise rows; weak evidence passes on less (the rest returns to the restart vector)
    const norm: Array<Edge[] | undefined> = new Array(n)
    for (const [i, row] of rows) {
      const sum = row.reduce((acc, e) => acc + e.weight, 0)
      const div = Math.max(sum, p.rowNorm)
      norm[i] = row.map(e => ({ to: e.to, weight: e.weight / div }))
    }
    let t = Float64Array.from(restart)
    for (let iter = 0; iter < p.iterations; iter++) {
      const next = new Float64Array(n)
      let leaked = 0
      for (let i = 0; i < n; i++) {
        const ti = t[i]
        if (ti === 0) continue
        const row = norm[i]
        let passed = 0
        if (row !== undefined) {
          for (const e of row) {
            next[e.to] += ti * e.weight
            passed += e.weight
          }
        }
        leaked += ti * (1 - passed)
      }
      for (let i = 0; i < n; i++) next[i] = (1 - p.restart) * (next[i] + leaked * restart[i]) + p.restart * restart[i]
      t = next
    }
    const full = p.fullTrustMass * p.restart
    return (issuer) => {
      if (issuer === this.self || this.preTrusted.has(issuer)) return 1
      const i = index.get(issuer)
      if (i === undefined || t[i] <= 0) return undefined
      return Math.min(1, t[i] / full)
    }
  }
}

/** Score one peer from scratch (builds a TrustModel) */
export function scorePeer (input: ScoreInput, peer: string, options: ScoreOptions = {}): TrustScore {
  return new TrustModel(input).score(peer, options)
}

export function bandOf (score: number): TrustBand {
  for (const b of BANDS) if (score >= b.min) return b.band
  return 'untrusted'
}

/** Sum of one issuer's records about one subject: positives and negatives each largest first, the k-th divided by 1 + f·k */
function aggregate (values: number[], f: number): number {
  const pos = values.filter(v => v > 0).sort((a, b) => b - a)
  const neg = values.filter(v => v < 0).sort((a, b) => a - b)
  let sum = 0
  pos.forEach((v, k) => { sum += v / (1 + f * k) })
  neg.forEach((v, k) => { sum += v / (1 + f * k) })
  return sum
}

function round (x: number): number {
  return Math.round(x * 1e6) / 1e6
}
