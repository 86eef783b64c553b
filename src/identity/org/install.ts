import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { decodeCertificate, encodeCertificate, type OrgCertificate } from './certificate.js'
import { InvalidCertificateError } from './errors.js'
import { CERT_FILE, MAX_CERT_BYTES } from './constants.js'

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
