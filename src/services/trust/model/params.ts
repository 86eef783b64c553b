/**
 * Parameters of the trust score (protocols/trust.md, "Scoring"). The numbers
 * follow reference/moltspeak.md §4.2–4.3 where it gives them; where it does
 * not (or where its numbers let Sybils in), the choice is noted.
 */
const day = 86_400_000

export interface ScoreParams {
  /** Positive evidence halves in weight every this many ms (reference: 90 days) */
  positiveHalfLife: number
  /** Negative evidence halves every this many ms (reference: 180 days) */
  negativeHalfLife: number
  /** Pseudo-count of positive and of negative evidence before any is seen: no evidence = score 0.5 */
  prior: number
  /** Weight of an issuer whose trust is unknown (zero EigenTrust mass from this node's view) */
  unknownIssuerWeight: number
  /** All unknown issuers together add at most this much evidence per polarity, however many they are */
  unknownIssuerCap: number
  /** An issuer whose EigenTrust mass reaches this fraction of the restart mass carries full weight (linear below) */
  fullTrustMass: number
  /** EigenTrust restart probability (1 − damping) */
  restart: number
  /** EigenTrust power iterations (reference: 20) */
  iterations: number
  /** Share of the restart mass given to this node; the rest is split among pre-trusted peers */
  selfRestartShare: number
  /** An issuer passes on its full trust only once its outgoing evidence reaches this much (less evidence passes less) */
  rowNorm: number
  /** Both edges of a mutual endorsement are multiplied by this (reference: ×0.3) */
  mutualDamping: number
  /** The k-th record of one issuer about one subject counts 1/(1 + independence × k) (reference: 0.5) */
  independence: number
  /** Weight of a record without a domain when a domain is asked for */
  generalDomainFactor: number
  /** Weight of a negative record about another domain when a domain is asked for */
  otherDomainNegativeFactor: number
  /** Evidence of one successful exchange this node observed */
  directSuccess: number
  /** Evidence of one failed exchange this node observed */
  directFailure: number
  /** Evidence units at which the volume part of confidence is full */
  confidenceVolume: number
  /** Weighted distinct issuers at which the diversity part of confidence is full */
  confidenceIssuers: number
  /** Weighted recent evidence (last `recentWindow` ms) at which the recency part of confidence is full */
  confidenceRecent: number
  recentWindow: number
  /** Contributions listed in `explain` */
  explainLimit: number
}

export const DEFAULT_SCORE_PARAMS: Readonly<ScoreParams> = Object.freeze({
  positiveHalfLife: 90 * day,
  negativeHalfLife: 180 * day,
  prior: 1,
  // reference: issuer factor 0.3 + 0.7 × score × confidence — a 0.3 floor lets 50 Sybils outvote anyone; here unknown ≈ nothing
  unknownIssuerWeight: 0.05,
  unknownIssuerCap: 0.1,
  fullTrustMass: 0.2,
  // reference: damping 0.85 (restart 0.15). A closed cluster keeps ≈ inflow / restart of trust mass, so
  // 0.3 halves what one careless endorsement into a Sybil ring is amplified to (test/unit/trust-score.test.ts)
  restart: 0.3,
  iterations: 20,
  selfRestartShare: 0.5,
  rowNorm: 1,
  mutualDamping: 0.3,
  independence: 0.5,
  generalDomainFactor: 0.5,
  otherDomainNegativeFactor: 0.5,
  directSuccess: 0.05,
  directFailure: 0.1,
  confidenceVolume: 50,
  confidenceIssuers: 10,
  confidenceRecent: 10,
  recentWindow: 30 * day,
  explainLimit: 10
})

/** Evidence magnitude of each claim value (reference §4.2 signal weights, §4.3 strengths, scaled to 0..1.5) */
export const STRENGTH_WEIGHT: Record<string, number> = { weak: 0.25, moderate: 0.5, strong: 0.75, exceptional: 1 }
export const SEVERITY_WEIGHT: Record<string, number> = { low: 0.25, medium: 0.5, high: 0.75, critical: 1 }
/** Incident reports weigh more than warnings (reference: security incident −3.0 vs PII violation −2.0) */
export const INCIDENT_FACTOR = 1.5
/** task_completion outcomes: completed is positive (scaled by rating), the rest negative (reference: −0.5, −1.0, −0.3) */
export const OUTCOME_WEIGHT: Record<string, number> = { failed: 0.5, abandoned: 1, timeout: 0.3 }
/** completed: 0.4 + 0.12 × rating (rating 5 → 1.0); unrated → 0.7 */
export const COMPLETED_BASE = 0.4
export const COMPLETED_PER_RATING = 0.12
export const COMPLETED_UNRATED = 0.7

/** Score bands (reference §4.2) */
export const BANDS = [
  { min: 0.9, band: 'excellent' },
  { min: 0.7, band: 'good' },
  { min: 0.5, band: 'moderate' },
  { min: 0.3, band: 'questionable' },
  { min: -Infinity, band: 'untrusted' }
] as const
export type TrustBand = typeof BANDS[number]['band']
