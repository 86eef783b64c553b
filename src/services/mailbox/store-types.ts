// The mailbox store's public shapes: what depositors hand over, what recipients fetch, the relay's counters

/** One box as a depositor hands it over */
export interface DepositItem {
  /** The sealed message's MoltSpeak id (bound into the seal) */
  id: string
  /** ms; capped to the relay's retention */
  exp: number
  /** The sealed box, base64 */
  box: string
}

/** One box as the recipient fetches it */
export interface StoredBox extends DepositItem {
  /** Position in the recipient's mailbox; acknowledge by key */
  key: string
  /** Depositor's PeerId (Noise-authenticated and signature-checked at deposit) */
  from: string
  /** When the relay stored it, ms */
  at: number
}

/** Where a deposit came from, for the per-address limits */
export interface DepositOrigin {
  /** The depositor's IPv4 address or IPv6 /64 (utils/ip-key.ts); 'unknown' when there is none */
  source?: string
}

export interface DepositResult {
  /** Boxes newly stored */
  stored: number
  /** Boxes this relay already held (a re-sent deposit) */
  duplicates: number
  /** Latest expiry among the deposited boxes, after the retention cap */
  expires: number
}

export interface MailboxStats {
  recipients: number
  messages: number
  bytes: number
  /** Deposit time of the oldest box held, if any */
  oldestAt?: number
  deposited: number
  delivered: number
  expired: number
  /** Boxes deleted by their recipient's purge requests */
  purged: number
  /** Recipients this relay keeps a mailbox for (reservation or mailbox session within the retention) */
  registrations: number
  refused: Record<string, number>
}
