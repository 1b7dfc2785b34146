/**
 * Every Redis key and pub/sub channel name the broker uses, in one place. The names carry hash
 * tags (the part between the first `{` and the next `}` decides a key's slot) so that they work
 * on Redis Cluster as on one Redis:
 *
 *   {<prefix>}:…                node-wide names (the session registry, the presence registry,
 *                               the broadcast-to-all and per-node channels): one slot, so a
 *                               script may touch several of them
 *   <prefix>:…:{<channel>}…     per app channel (its pub/sub channel, its history, its presence
 *                               hash): one slot per app channel, so channels spread over the
 *                               shards by their names, and a script that writes a channel's
 *                               history or presence may publish on the channel's pub/sub name
 *
 * A channel name with a `}` in it still maps all its names to one slot (the tag then ends at
 * that `}`, the same way in every name), so nothing depends on the characters a channel uses.
 * One exception needs care: a name that starts with `}` would make the tag empty, and Redis
 * would then hash each whole name apart. Such a channel gets a space before it inside the
 * braces: no channel name has white space, so no other channel's names can look the same (a
 * prefix that starts with `}` likewise).
 */
export class RedisKeys {
  /** the node-wide hash tag: every node-wide name is in its slot */
  private readonly node: string

  constructor (private readonly prefix: string) {
    this.node = this.tag(prefix)
  }

  /** `{<name>}`: the hash tag of every name of a channel, or of the node-wide names (see above for a leading `}`) */
  private tag (name: string): string {
    return name.startsWith('}') ? `{ ${name}}` : `{${name}}`
  }

  /** set of the ids of nodes that registered sessions */
  get nodes (): string { return `${this.node}:nodes` }

  /** present while the node lives (a TTL its timer refreshes) */
  alive (nodeId: string): string { return `${this.node}:alive:${nodeId}` }

  /** set of the session ids a node holds, with the same TTL */
  sessions (nodeId: string): string { return `${this.node}:sessions:${nodeId}` }

  /** pub/sub: every node; broadcasts to all sockets */
  get all (): string { return `${this.node}:all` }

  /** pub/sub: one node; direct sends to a session it holds */
  direct (nodeId: string): string { return `${this.node}:node:${nodeId}` }

  /** pub/sub: the nodes with a local subscriber of `channel` */
  channel (channel: string): string { return `${this.prefix}:ch:${this.tag(channel)}` }

  /** a history channel's hash (e = epoch, o = top offset) */
  historyMeta (channel: string): string { return `${this.prefix}:hist:${this.tag(channel)}:meta` }

  /** a history channel's stream of entries */
  historyLog (channel: string): string { return `${this.prefix}:hist:${this.tag(channel)}:log` }

  /**
   * the random base of the epochs of the history streams in one slot, and of the epoch a
   * never-published channel answers; `tag` is a hash tag of that slot (history-store.ts)
   */
  historyBase (tag: string): string { return `${this.prefix}:hist-base:{${tag}}` }

  /** a presence channel's hash: ref → the track */
  presence (channel: string): string { return `${this.prefix}:presence:${this.tag(channel)}` }

  /** set of the nodes that have presence tracks */
  get presenceNodes (): string { return `${this.node}:presence-nodes` }

  /** set of the channels a node has (or had) tracks in */
  presenceNode (nodeId: string): string { return `${this.node}:presence-node:${nodeId}` }
}
