/**
 * The text a delta is made against and rebuilds, the same on both sides: the data's JSON with
 * every character outside printable ASCII written as a `\uXXXX` escape. Being ASCII, its bytes
 * are its characters, so a fossil delta of two such texts is ASCII too: it travels as a plain
 * JSON string (no base64), and the client applies it to a JS string without a UTF-8 codec.
 * The server makes it from the data it publishes, the client from the data it decoded (or the
 * text it rebuilt); both are the same value, so both get the same text.
 */
import sjson from 'secure-json-parse'

export function deltaText (data: unknown): string | undefined {
  const json = JSON.stringify(data) as string | undefined
  if (json === undefined) return undefined
  return json.replace(/[\u007f-\uffff]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'))
}

/** Parses a rebuilt delta text as the codec parses a frame: prototype-poisoning keys refused (throws). */
export function parseDeltaText (text: string): unknown {
  return sjson.parse(text, undefined, { protoAction: 'error', constructorAction: 'error' })
}
