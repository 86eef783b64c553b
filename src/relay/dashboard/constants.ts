/**
 * The relay dashboard: one page and one JSON document on the relay's
 * metrics port (`molt relay --metrics-port`, 127.0.0.1 only).
 */
import { second, minute } from '../../constants.js'

/** Paths that serve the page */
export const DASHBOARD_PATHS: readonly string[] = ['/', '/dashboard']

/** The JSON status document the page polls */
export const STATUS_PATH = '/api/status'

/** How often the page asks for the status */
export const POLL_INTERVAL = 2 * second

/**
 * Period of the relayed-bytes samples behind the throughput chart: the same
 * as the poll, so the chart moves on every refresh.
 */
export const THROUGHPUT_SAMPLE_INTERVAL = 2 * second

/** How far back the chart goes: 10 min of 2 s samples is a 300-slot ring (~5 KiB) */
export const THROUGHPUT_HISTORY = 10 * minute

/**
 * Peers and reservations listed in one status document (the counts are
 * always exact). A full relay holds 1,024 reservations and 2,304 connections;
 * listing them all every 2 s would cost ~½ MB per poll for rows nobody reads.
 */
export const MAX_LISTED = 256

/** Longest peer-supplied text (identify's agent version) kept in the status */
export const MAX_AGENT_LENGTH = 96

/**
 * Host header names the dashboard answers to. Anything else is refused: a web
 * page the operator visits could otherwise point its own DNS name at
 * 127.0.0.1 (DNS rebinding) and read the reservation holders' addresses.
 */
export const ALLOWED_HOSTS: readonly string[] = ['127.0.0.1', 'localhost', '[::1]']
