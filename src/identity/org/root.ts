/** A trusted organisation: config.json `trust.orgs` entry */
export interface OrgRoot {
  name: string
  /** `ed25519:<base64>` public key */
  key: string
}
