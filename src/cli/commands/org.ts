import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { connectToRunningAgent } from '../../api/local-agent.js'
import { loadConfig, saveConfig } from '../../config/index.js'
import { IDENTITY_FILE } from '../../constants.js'
import { identityFromKey, loadKey } from '../../identity/index.js'
import {
  createOrgKey, decodeCertificate, decodeRevocation, encodeCertificate, importRevocation, installCertificate, issueCertificate, loadOrgKey, orgKeyPath, revokeCertificate,
  DEFAULT_CERT_VALIDITY, MAX_CERT_BYTES, MAX_CERT_VALIDITY, type OrgCertificate, type OrgRevocation
} from '../../identity/org/index.js'
import { canonicalize, MOLT_KEY_PATTERN } from '../../moltspeak/index.js'
import { stringFlag } from '../args.js'
import { UsageError } from '../errors.js'
import type { Command } from '../command.js'

const SUBCOMMANDS = ['init', 'issue', 'install-cert', 'trust', 'revoke', 'import-revocation'] as const
const UNITS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000 }

export const org: Command = {
  spec: {
    name: 'org',
    args: '<init|issue|install-cert|trust|revoke|import-revocation> …',
    details: [
      'molt org init <name> [--org-dir <dir>] [--passphrase-file <file>]',
      '      create the organisation key <org-dir>/<name>.key (default <data-dir>/org/), mode 0600;',
      '      with a passphrase (file or $MOLT_ORG_PASSPHRASE) it is sealed with scrypt + AES-256-GCM',
      'molt org issue <agent PeerId> --org <name> --name <agent name> [--capabilities a,b] [--expires 90d] [--out <file>]',
      '      sign a certificate binding the agent\'s key to the organisation; printed, or written to --out',
      'molt org install-cert <file>   install a certificate for this data dir\'s agent: its card carries it from the next start',
      'molt org trust <name> <ed25519:key>   trust an organisation: add it to config.json trust.orgs',
      'molt org revoke <serial|certificate file> --org <name> [--reason <text>] [--out <file>]',
      '      sign a revocation of a certificate; printed, or written to --out. When an agent runs with this',
      '      data dir it also publishes it (molt/org-revocation/1 and trust-sync): every node that trusts the org honours it',
      'molt org import-revocation <file>   keep a revocation (signed by a trusted org) in this data dir:',
      '      this node then shows the certificate as revoked; a running agent also publishes it',
      '',
      `--expires takes <n>m, <n>h or <n>d (default 90d, at most ${MAX_CERT_VALIDITY / UNITS.d}d).`
    ].join('\n'),
    options: {
      'org-dir': { type: 'string', arg: '<dir>', description: 'init/issue/revoke: where organisation keys live (default <data-dir>/org)' },
      'passphrase-file': { type: 'string', arg: '<file>', description: 'init/issue/revoke: the org key\'s passphrase (else $MOLT_ORG_PASSPHRASE; none: unencrypted)' },
      org: { type: 'string', arg: '<name>', description: 'issue/revoke: the organisation (its key file <org-dir>/<name>.key)' },
      name: { type: 'string', arg: '<agent name>', description: 'issue: the agent\'s name in the organisation' },
      capabilities: { type: 'string', arg: '<a,b>', description: 'issue: capability names the organisation vouches for' },
      expires: { type: 'string', arg: '<90d>', description: 'issue: validity from now' },
      out: { type: 'string', arg: '<file>', description: 'issue/revoke: write the certificate or revocation to this file' },
      reason: { type: 'string', arg: '<text>', description: 'revoke: why (≤ 256 characters)' }
    }
  },

  async run ({ args, dataDir, out, signal }) {
    const [sub, ...rest] = args.positionals
    if (sub === undefined) throw new UsageError('molt org needs a subcommand: init, issue, install-cert or trust (see molt org --help)')
    if (!(SUBCOMMANDS as readonly string[]).includes(sub)) throw new UsageError(`unknown subcommand "${sub}" (see molt org --help)`)
    const wanted = sub === 'trust' ? 2 : 1
    if (rest.length !== wanted) throw new UsageError(`molt org ${sub} needs ${['<name>', '<agent PeerId>', '<file>', '<name> <key>', '<serial|certificate file>', '<file>'][SUBCOMMANDS.indexOf(sub as any)]} (see molt org --help)`)
    const v = args.values

    if (sub === 'init') {
      const path = orgKeyPath(rest[0], dataDir, stringFlag(v, 'org-dir'))
      const key = await createOrgKey(path, rest[0], { passphrase: await passphrase(stringFlag(v, 'passphrase-file')) })
      out.result([
        `Organisation ${key.name}`,
        `Key         ${key.publicKey}`,
        `Key file    ${path}`,
        `Verifiers trust it with: molt org trust ${key.name} ${key.publicKey}`
      ], { org: key.name, key: key.publicKey, path })
    } else if (sub === 'issue') {
      const orgName = stringFlag(v, 'org')
      const agentName = stringFlag(v, 'name')
      if (orgName === undefined || agentName === undefined) throw new UsageError('molt org issue needs --org <name> and --name <agent name>')
      const validity = parseDuration(stringFlag(v, 'expires'))
      const key = await loadOrgKey(orgKeyPath(orgName, dataDir, stringFlag(v, 'org-dir')), { passphrase: await passphrase(stringFlag(v, 'passphrase-file')) })
      const now = Date.now()
      const capabilities = (stringFlag(v, 'capabilities') ?? '').split(',').map(s => s.trim()).filter(s => s.length > 0)
      const cert = issueCertificate({ org: key.name, agent: agentName, peerId: rest[0], capabilities, issued: now, expires: now + validity }, key.privateKey)
      const file = stringFlag(v, 'out')
      if (file !== undefined) {
        await writeFile(file, encodeCertificate(cert) + '\n', { mode: 0o644 })
        out.result(`certificate ${cert.serial} for ${cert.agent}@${cert.org} (${cert.peer_id}) until ${new Date(cert.expires).toISOString()} written to ${file}`, { certificate: cert, path: file })
      } else {
        out.result(encodeCertificate(cert), { certificate: cert })
      }
    } else if (sub === 'install-cert') {
      const cert = await readCertificate(rest[0])
      const key = await loadKey(join(dataDir, IDENTITY_FILE))
      if (key === undefined) throw new UsageError(`no agent key in ${dataDir} (run molt init first)`)
      const path = await installCertificate(dataDir, cert, identityFromKey(key).moltKey)
      out.result(`installed certificate ${cert.serial}: ${cert.agent}@${cert.org} until ${new Date(cert.expires).toISOString()} (restart the agent to publish it)`, { certificate: cert, path })
    } else if (sub === 'revoke') {
      const orgName = stringFlag(v, 'org')
      if (orgName === undefined) throw new UsageError('molt org revoke needs --org <name>')
      const serial = /^[0-9a-f]{32}$/.test(rest[0]) ? rest[0] : (await readCertificate(rest[0])).serial
      const key = await loadOrgKey(orgKeyPath(orgName, dataDir, stringFlag(v, 'org-dir')), { passphrase: await passphrase(stringFlag(v, 'passphrase-file')) })
      const revocation = revokeCertificate({ org: key.name, serial, reason: stringFlag(v, 'reason') }, key.privateKey)
      const published = await publish(dataDir, revocation, signal)
      const file = stringFlag(v, 'out')
      if (file !== undefined) {
        await writeFile(file, canonicalize(revocation) + '\n', { mode: 0o644 })
        out.result(`revocation of certificate ${serial} of ${key.name} written to ${file}${published.published ? '; published by the running agent' : ''}`, { revocation, path: file, ...published })
      } else {
        out.result(canonicalize(revocation), { revocation, ...published })
      }
    } else if (sub === 'import-revocation') {
      const text = await readFile(rest[0], 'utf8').catch((err: any) => { throw new UsageError(`cannot read ${rest[0]}: ${err.message as string}`) })
      const revocation = decodeRevocation(text.trim())
      const { trust } = await loadConfig(dataDir)
      const added = await importRevocation(dataDir, revocation, trust.orgs)
      const published = await publish(dataDir, revocation, signal)
      out.result(`${added ? 'imported' : 'already had'} the revocation of certificate ${revocation.serial} of ${revocation.org}${published.published ? '; published by the running agent' : ''}`, { revocation, added, ...published })
    } else {
      const [name, key] = rest
      if (!MOLT_KEY_PATTERN.test(key)) throw new UsageError('<key> must be ed25519:<base64 of 32 bytes>, as molt org init prints it')
      const config = await loadConfig(dataDir)
      if (!config.trust.orgs.some(o => o.name === name && o.key === key)) config.trust.orgs.push({ name, key })
      await saveConfig(dataDir, config)
      out.result(`trusting organisation ${name} (${key}); a running agent reads it at its next start`, { orgs: config.trust.orgs })
    }
  }
}

/**
 * Hand a revocation to the agent running with `dataDir`, if one runs: it keeps and publishes it.
 * `published` false when none runs; `trusted` whether that agent trusts the org (else it only carries it on)
 */
async function publish (dataDir: string, revocation: OrgRevocation, signal: AbortSignal): Promise<{ published: boolean, trusted?: boolean }> {
  const running = await connectToRunningAgent(dataDir, { signal })
  if (running == null) return { published: false }
  const { trusted } = await running.client.trust<{ trusted: boolean }>('POST', '/org-revocations', { revocation }, { signal })
  return { published: true, trusted }
}

/** `90d`, `12h`, `30m` in ms, within (0, MAX_CERT_VALIDITY] */
function parseDuration (text: string | undefined): number {
  if (text === undefined) return DEFAULT_CERT_VALIDITY
  const match = /^(\d{1,6})([mhd])$/.exec(text)
  const ms = match === null ? NaN : Number(match[1]) * UNITS[match[2]]
  if (!(ms > 0 && ms <= MAX_CERT_VALIDITY)) throw new UsageError(`--expires must be <n>m, <n>h or <n>d, at most ${MAX_CERT_VALIDITY / UNITS.d}d; got "${text}"`)
  return ms
}

async function passphrase (file: string | undefined): Promise<string | undefined> {
  if (file !== undefined) {
    const text = await readFile(file, 'utf8').catch((err: any) => { throw new UsageError(`cannot read --passphrase-file ${file}: ${err.message as string}`) })
    return text.replace(/\r?\n$/, '')
  }
  const env = process.env.MOLT_ORG_PASSPHRASE
  return env !== undefined && env !== '' ? env : undefined
}

async function readCertificate (file: string): Promise<OrgCertificate> {
  let bytes: Buffer
  try {
    bytes = await readFile(file)
  } catch (err: any) {
    throw new UsageError(`cannot read ${file}: ${err.message as string}`)
  }
  if (bytes.byteLength > MAX_CERT_BYTES + 2) throw new UsageError(`${file} is over ${MAX_CERT_BYTES} bytes: not a certificate`)
  return decodeCertificate(bytes.toString('utf8').trim())
}
