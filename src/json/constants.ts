/**
 * Deepest nesting of `[`/`{` accepted in any JSON that arrives from outside
 * the process (a peer's frame, a sealed box, an API body, config.json). The
 * outermost object is depth 1.
 *
 * Why 64: the deepest legitimate document is a MoltSpeak message whose `p`
 * nests the allowed 50 levels (MAX_PAYLOAD_DEPTH), which is 52 brackets deep
 * on the wire, and an API body that wraps such a message (53). Anything deeper
 * is refused before `JSON.parse`, whose cost grows with depth and whose
 * result `JSON.stringify` (recursive) cannot serialize past a few thousand.
 *
 * @default 64 (levels)
 */
export const MAX_JSON_DEPTH = 64
