import { MoltSpeakError, validateMessage, verifyMessageSource } from '../../src/moltspeak/index.js'
import type { PyVerdict } from './python.js'

interface Verdict { code: string, reason?: string }

/** molt's verdict on a wire text: the parse → validate → source-verify path of speak inbound */
export function moltVerdict (text: string): Verdict {
  try {
    const message = validateMessage(JSON.parse(text))
    if (message.sig == null) return { code: 'accept' }
    return verifyMessageSource(message, text) ? { code: 'accept' } : { code: 'E_SIGNATURE', reason: 'signature does not verify against from.key' }
  } catch (err) {
    if (err instanceof MoltSpeakError) return { code: err.code, reason: err.message }
    throw err
  }
}

export function pyVerdict (v: PyVerdict): Verdict {
  return v.ok ? { code: 'accept' } : { code: v.code ?? 'none', reason: v.reason }
}
