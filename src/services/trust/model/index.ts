export { TrustModel, scorePeer, bandOf } from './score.js'
export type { Signal, Experience, ScoreInput, ScoreOptions, TrustScore, Contribution } from './score.js'
export { DEFAULT_SCORE_PARAMS, BANDS } from './params.js'
export type { ScoreParams, TrustBand } from './params.js'
