/**
 * The NATS engine's names: subjects, the history stream and the key-value buckets, all under
 * the prefix. NATS gives `.`, `*`, `>` and white space a meaning in subjects, and stream and
 * bucket names allow even fewer characters, so every app name that goes into one (the prefix,
 * a channel, a node id, a session id) is encoded as one token: letters, digits and `-` stay as
 * they are, every other character becomes `_` and the hex of its UTF-8 bytes (`.` → `_2E`,
 * `_` → `_5F`). The encoding is one-to-one (no two names share a token) and reversible, and a
 * token is a valid subject token, key-value key token, stream name and bucket name.
 *
 *   <P>.a                    every node: broadcasts
 *   <P>.n.<node>             one node: what is routed to it
 *   <P>.s.<session>          a session, in a queue group of the node holding it (sends are requests)
 *   <P>.c.<channel>.m        a channel's plain publications
 *   <P>.c.<channel>.h        its history publications, republished by the history stream once stored
 *   <P>.c.<channel>.p.<node> its presence changes, republished by the presence bucket once stored
 *                            (`<node>=<i>` for page i of a node's tracks that do not fit one message)
 *   <P>.h.<channel>          a history channel's stream subject (in the stream <S>-history)
 *   <P>.h._                  the prefix's epoch base, in the same stream (no channel encodes to `_`)
 *
 * A node listens to `<P>.c.<channel>.>` while it has a local subscriber of the channel. <P> is
 * the encoded prefix; <S> is `FC-` and the encoded prefix, or, when that would not fit a file
 * name (streams are directories on the server), `FCH-` and the SHA-256 of the prefix in hex.
 */
import { createHash } from 'node:crypto'

const plain = /^[A-Za-z0-9-]$/
const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

/** One name as one token (see the header). */
export function encodeToken (name: string): string {
  let out = ''
  for (const char of name) {
    if (plain.test(char)) {
      out += char
      continue
    }
    for (const byte of encoder.encode(char)) out += '_' + byte.toString(16).toUpperCase().padStart(2, '0')
  }
  return out
}

/** A token back to its name; `undefined` when it is not one `encodeToken` writes. */
export function decodeToken (token: string): string | undefined {
  const bytes: number[] = []
  for (let i = 0; i < token.length; i++) {
    const char = token[i]
    if (char !== '_') {
      if (!plain.test(char)) return undefined
      bytes.push(char.charCodeAt(0))
      continue
    }
    const hex = token.slice(i + 1, i + 3)
    if (!/^[0-9A-F]{2}$/.test(hex)) return undefined
    bytes.push(parseInt(hex, 16))
    i += 2
  }
  try {
    return decoder.decode(new Uint8Array(bytes))
  } catch {
    return undefined
  }
}

/** between a node's token and a page number in a presence key: `encodeToken` never writes it */
export const pageMark = '='

/** the longest stream name kept readable (the server makes a directory of it, with room to spare) */
const maxReadableName = 160

export class NatsNames {
  readonly base: string
  readonly all: string
  /** the history stream and the buckets: `<S>-history`, `<S>-nodes`, `<S>-presence` */
  readonly historyStream: string
  readonly historySubjects: string
  readonly nodesBucket: string
  readonly presenceBucket: string

  constructor (readonly prefix: string) {
    this.base = encodeToken(prefix)
    this.all = `${this.base}.a`
    const stem = this.base.length <= maxReadableName
      ? `FC-${this.base}`
      : `FCH-${createHash('sha256').update(prefix).digest('hex')}`
    this.historyStream = `${stem}-history`
    this.historySubjects = `${this.base}.h.*`
    this.nodesBucket = `${stem}-nodes`
    this.presenceBucket = `${stem}-presence`
  }

  node (nodeId: string): string {
    return `${this.base}.n.${encodeToken(nodeId)}`
  }

  session (sessionId: string): string {
    return `${this.base}.s.${encodeToken(sessionId)}`
  }

  /** what a node subscribes for a channel: its plain, history and presence subjects */
  channel (channel: string): string {
    return `${this.base}.c.${encodeToken(channel)}.>`
  }

  channelMessages (channel: string): string {
    return `${this.base}.c.${encodeToken(channel)}.m`
  }

  /** where the history stream republishes the entries of `channel` (see historyRepublish) */
  channelHistory (channel: string): string {
    return `${this.base}.c.${encodeToken(channel)}.h`
  }

  /** the subject of the prefix's epoch base in the history stream: `_` is no channel's token */
  get historyBase (): string {
    return `${this.base}.h._`
  }

  history (channel: string): string {
    return `${this.base}.h.${encodeToken(channel)}`
  }

  /** the history stream's republish: stored entries go out on `<P>.c.<channel>.h` */
  get historyRepublish (): { src: string, dest: string } {
    return { src: this.historySubjects, dest: `${this.base}.c.{{wildcard(1)}}.h` }
  }

  /** key of the node's liveness in the nodes bucket */
  aliveKey (nodeId: string): string {
    return `alive.${encodeToken(nodeId)}`
  }

  /** key of a node's tracks in one channel in the presence bucket */
  presenceKey (channel: string, nodeId: string): string {
    return `c.${encodeToken(channel)}.${encodeToken(nodeId)}`
  }

  /**
   * key of one page of a node's tracks in a channel, where they do not fit one message: the
   * first page is `presenceKey`, page i > 0 `c.<channel>.<node>=<i>` (no token encodes to `=`)
   */
  presencePageKey (channel: string, nodeId: string, page: number): string {
    return page === 0 ? this.presenceKey(channel, nodeId) : `${this.presenceKey(channel, nodeId)}${pageMark}${page}`
  }

  /** key saying a node has (or had) tracks */
  presenceNodeKey (nodeId: string): string {
    return `n.${encodeToken(nodeId)}`
  }

  /** the subject of a key in a bucket */
  kvSubject (bucket: string, key: string): string {
    return `$KV.${bucket}.${key}`
  }

  /** the presence bucket's republish: changes go out on `<P>.c.<channel>.p.<node>` */
  get presenceRepublish (): { src: string, dest: string } {
    return { src: `$KV.${this.presenceBucket}.c.*.*`, dest: `${this.base}.c.{{wildcard(1)}}.p.{{wildcard(2)}}` }
  }
}
