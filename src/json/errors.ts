/** A JSON text nests `[`/`{` deeper than the limit; refused before parsing */
export class JsonTooDeepError extends Error {
  static override name = 'JsonTooDeepError'
  override name = 'JsonTooDeepError'
  constructor (readonly limit: number, readonly offset: number) {
    super(`JSON nests deeper than ${limit} levels (at offset ${offset})`)
  }
}

/** A JSON text is not valid UTF-8 or not valid JSON */
export class JsonSyntaxError extends Error {
  static override name = 'JsonSyntaxError'
  override name = 'JsonSyntaxError'
}

/** A value other than an Error was thrown while serializing; it is carried in the message */
export class NonErrorThrownError extends Error {
  static override name = 'NonErrorThrownError'
  override name = 'NonErrorThrownError'
}
