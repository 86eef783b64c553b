import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { decodeCertificate, encodeCertificate, tooDeep, type OrgCertificate, type OrgRoot } from './certificate.js'
import { InvalidCertificateError } from './errors.js'
import { checkRevocation, verifyRevocation, type OrgRevocation } from './revocation.js'
import { CERT_FILE, MAX_CERT_BYTES, MAX_STORED_REVOCATIONS, REVOCATIONS_FILE } from './constants.js'

/**
 * Install a certificate into an agent's data dir (`<dataDir>/org-cert.json`),
 * replacing the one there: the agent's card carries it from the next start.
 *
 * @throws {InvalidCertificateError} malformed, or for another agent key than `agentKey`
 */
export async function installCertificate (dataDir: string, cert: OrgCertificate, agentKey: string): Promise<string> {
  if (cert.agent_key !== agentKey) {
    throw new InvalidCertificateError(`the certificate is for ${cert.peer_id}, not for this agent`, 'agent_key')
  }
  const text = encodeCertificate(cert)
  decodeCertificate(text)
  const path = join(dataDir, CERT_FILE)
  await mkdir(dataDir, { recursive: true, mode: 0o700 })
  // write then rename: a crash never leaves half a certificate
  await writeFile(path + '.tmp', text + '\n', { mode: 0o600 })
  await rename(path + '.tmp', path)
  return path
}

/** The certificate installed in `dataDir`, or undefined when there is none */
export async function loadInstalledCertificate (dataDir: string): Promise<OrgCertificate | undefined> {
  const path = join(dataDir, CERT_FILE)
  let bytes: Buffer
  try {
    bytes = await readFile(path)
  } catch (err: any) {
    if (err.code === 'ENOENT') return undefined
    throw new InvalidCertificateError(`cannot read ${path}: ${err.message as string}`, 'certificate')
  }
  if (bytes.byteLength > MAX_CERT_BYTES + 1) throw new InvalidCertificateError(`${path} is over ${MAX_CERT_BYTES} bytes`, 'certificate')
  try {
    return decodeCertificate(bytes.toString('utf8').trimEnd())
  } catch (err: any) {
    throw new InvalidCertificateError(`${path}: ${err.message as string}`, err.field ?? 'certificate')
  }
}

/**
 * The revocations this verifier imported (`<dataDir>/org-revocations.json`), or [].
 * Bounded before parsing: MAX_STORED_REVOCATIONS × MAX_CERT_BYTES bytes, depth 3.
 */
export async function loadRevocations (dataDir: string): Promise<OrgRevocation[]> {
  const path = join(dataDir, REVOCATIONS_FILE)
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err: any) {
    if (err.code === 'ENOENT') return []
    throw new InvalidCertificateError(`cannot read ${path}: ${err.message as string}`, 'revocations')
  }
  if (text.length > MAX_STORED_REVOCATIONS * MAX_CERT_BYTES) throw new InvalidCertificateError(`${path} is too large`, 'revocations')
  if (tooDeep(text, 3)) throw new InvalidCertificateError(`${path} nests too deep`, 'revocations')
  let list: unknown
  try {
    list = JSON.parse(text)
  } catch {
    throw new InvalidCertificateError(`${path} is not JSON`, 'revocations')
  }
  if (!Array.isArray(list) || list.length > MAX_STORED_REVOCATIONS) throw new InvalidCertificateError(`${path} must be an array of at most ${MAX_STORED_REVOCATIONS} revocations`, 'revocations')
  for (const entry of list) checkRevocation(entry)
  return list
}

/**
 * Keep a revocation in `dataDir` after checking it is signed by a root in
 * `roots` (one from an untrusted org would count for nothing). Returns false
 * when it was already there.
 *
 * @throws {InvalidCertificateError} malformed, not signed by a trusted root, or the store is full
 */
export async function importRevocation (dataDir: string, revocation: OrgRevocation, roots: readonly OrgRoot[]): Promise<boolean> {
  if (!verifyRevocation(revocation, roots)) {
    throw new InvalidCertificateError(`the revocation is not signed by a trusted key of ${(revocation as OrgRevocation).org} (trust.orgs)`, 'sig')
  }
  const list = await loadRevocations(dataDir)
  if (list.some(r => r.sig === revocation.sig)) return false
  if (list.length >= MAX_STORED_REVOCATIONS) throw new InvalidCertificateError(`${REVOCATIONS_FILE} holds ${MAX_STORED_REVOCATIONS} revocations already`, 'revocations')
  list.push(revocation)
  const path = join(dataDir, REVOCATIONS_FILE)
  await mkdir(dataDir, { recursive: true, mode: 0o700 })
  await writeFile(path + '.tmp', JSON.stringify(list) + '\n', { mode: 0o600 })
  await rename(path + '.tmp', path)
  return true
}
