import { day } from '../../constants.js'

/** `type` of an organisation certificate (protocols/identity.md) */
export const CERT_TYPE = 'molt-org-cert'

/** Largest certificate (UTF-8 JSON bytes) a decoder accepts; a larger one is refused before JSON.parse */
export const MAX_CERT_BYTES = 8 * 1024

/** Deepest nesting of arrays/objects in a certificate (the certificate itself is depth 1, capabilities 2) */
export const MAX_CERT_DEPTH = 4

/** Capabilities one certificate may list */
export const MAX_CERT_CAPABILITIES = 64

/** Longest capability name in a certificate, in characters */
export const MAX_CERT_CAPABILITY_LENGTH = 128

/** Longest validity (`expires - issued`) an issuer signs and a verifier accepts: 2 years, in ms */
export const MAX_CERT_VALIDITY = 730 * day

/** Validity of `molt org issue` without `--expires`: 90 days, in ms */
export const DEFAULT_CERT_VALIDITY = 90 * day

/** A certificate `issued` further than this in the future is refused (clock skew allowance), in ms */
export const MAX_CERT_CLOCK_SKEW = 5 * 60_000

/** The organisation keys' directory under the data dir (`<data-dir>/org/<name>.key`) */
export const ORG_DIR = 'org'

/** The agent's installed certificate, in its data dir */
export const CERT_FILE = 'org-cert.json'

/** Org key files, like agent key files, are readable by their owner only */
export const ORG_KEY_FILE_MODE = 0o600

/** Largest org key file read, in bytes (a key file is < 1 KiB) */
export const MAX_ORG_KEY_FILE_BYTES = 4 * 1024

/**
 * scrypt cost of passphrase-encrypted org keys: N = 2^17, r = 8, p = 1
 * (≈128 MiB of memory, a fraction of a second once per `molt org issue`)
 */
export const SCRYPT_N = 2 ** 17
export const SCRYPT_R = 8
export const SCRYPT_P = 1
/** scrypt needs 128·N·r bytes; node's default maxmem (32 MiB) is below that */
export const SCRYPT_MAXMEM = 256 * 1024 * 1024

/** `type` of an organisation's certificate revocation (protocols/identity.md, "Revocation") */
export const REVOCATION_TYPE = 'molt-org-revocation'

/** Longest `reason` of a revocation, in characters */
export const MAX_REVOCATION_REASON_LENGTH = 256

/** Revocations a verifier keeps, in its data dir */
export const REVOCATIONS_FILE = 'org-revocations.json'

/** Revocations kept in REVOCATIONS_FILE; importing more is refused */
export const MAX_STORED_REVOCATIONS = 1024
