import { rawPrivateKeyToKeyObject, type MoltMessage } from '../../../src/moltspeak/index.js'

// reference/moltspeak.md §1.7: derived by running the Python and JS reference SDKs
export const SEED = new Uint8Array(32).fill(1)
export const PUBLIC_KEY_B64 = 'iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w='
export const MOLT_KEY = 'ed25519:' + PUBLIC_KEY_B64
export const PYTHON_CANONICAL = '{"cls":"int","from":{"agent":"alice","key":"ed25519:iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w=","org":"acme"},"id":"550e8400-e29b-41d4-a716-446655440000","op":"query","p":{"domain":"weather","intent":"forecast","params":{"location":"Tokyo"}},"to":{"agent":"bob","org":"widgets"},"ts":1703280000000,"v":"0.1"}'
export const PYTHON_SIG = 'ed25519:13jk4medcBZf87N+LoKB008x+pE+vo2GZxeN1/TizyGNwHsWju28SXnaFJNsjlNvPcm0zuW40d7WjyL3xZBYCg=='
export const JS_SDK_SIG = 'ed25519:XZdt2bATHJ/Yd7Xy+57N+AdA5cmq50d00BnXR5vGWp8/OlyVfFFqB6ng6NyGKoYc/R87quaLsYyx6BHXw5AwAg=='

export const privateKey = rawPrivateKeyToKeyObject(SEED)

/** The §1.7 test-vector message, unsigned (a fresh copy each call) */
export function vectorMessage (): MoltMessage {
  return {
    v: '0.1',
    id: '550e8400-e29b-41d4-a716-446655440000',
    ts: 1703280000000,
    op: 'query',
    from: { agent: 'alice', org: 'acme', key: MOLT_KEY },
    to: { agent: 'bob', org: 'widgets' },
    p: { domain: 'weather', intent: 'forecast', params: { location: 'Tokyo' } },
    cls: 'int'
  }
}
