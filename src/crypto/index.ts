export { Sealer, SEAL_OVERHEAD, SEAL_VERSION, ed25519PublicToX25519, ed25519SeedToX25519, type SealParties } from './seal.js'
export { SealError } from './errors.js'
