export * from './constants.js'
export { InvalidCertificateError, OrgKeyError, RevocationSignatureError } from './errors.js'
export {
  issueCertificate, decodeCertificate, encodeCertificate, checkCertificate, verifyOrgClaim, moltKeyOfPeerId, tooDeep,
  type OrgCertificate, type OrgRoot, type IssueOptions, type OrgVerdict, type OrgVerdictCode, type CertifiedSubject, type VerifyOrgOptions
} from './certificate.js'
export { revokeCertificate, decodeRevocation, checkRevocation, verifyRevocation, revocationId, classifyRevocation, type OrgRevocation } from './revocation.js'
export { createOrgKey, loadOrgKey, orgKeyPath, checkOrgName, type OrgKey } from './org-key.js'
export { loadInstalledCertificate, installCertificate, loadRevocations, importRevocation } from './install.js'
