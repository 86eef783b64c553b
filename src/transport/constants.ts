/**
 * Noise messages of at least this many bytes are sealed and opened with
 * node:crypto's ChaCha20-Poly1305 (OpenSSL), smaller ones with Noise's
 * WebAssembly one. @chainsafe/libp2p-noise switches at 1,200 bytes; on the
 * bench machine (AMD EPYC, Node 22, OpenSSL 3) OpenSSL is the faster from
 * ≈ 600 bytes: a 1,100-byte message costs 5.8 µs to seal and 4.4 µs to open
 * against 8.6 and 8.8 µs (`bench/speak-costs.ts`). A 1 KiB MoltSpeak
 * message is just below Noise's own threshold.
 */
export const NATIVE_CIPHER_FROM_BYTES = 600
