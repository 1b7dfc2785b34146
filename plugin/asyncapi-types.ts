/**
 * The public types of the AsyncAPI document (a leaf module: plugin/types.ts names them).
 */

export interface AsyncApiOptions {
  /** the document's info [{ title: 'Channels API', version: '1.0.0' }] */
  info?: { title?: string, version?: string, description?: string }
  /** host (and port) of the server entry ['localhost'; the served route uses the request's Host] */
  host?: string
  /** 'ws' or 'wss' ['ws'; the served route: 'wss' when the request came over https] */
  protocol?: 'ws' | 'wss'
}

type JsonObject = Record<string, unknown>

/** An AsyncAPI 3.0.0 document (plain JSON). */
export interface AsyncApiDocument {
  asyncapi: '3.0.0'
  info: { title: string, version: string, description?: string }
  defaultContentType: string
  servers: Record<string, JsonObject>
  channels: Record<string, JsonObject>
  operations: Record<string, JsonObject>
  components: { messages: Record<string, JsonObject>, schemas: Record<string, JsonObject> }
}
