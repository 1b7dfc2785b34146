/**
 * History channels on Redis: offsets, epochs and entries live in Redis (see redis-history-scripts.ts),
 * so any node can answer a recovery, also after the node a client left died without closing.
 * Publications come back to every node through pub/sub, the publisher's own included: each node
 * delivers a channel's publications in the one order Redis assigned.
 *
 * The pub/sub envelope of a history publication (beside those of redis-envelope.ts):
 *
 *   h \n nodeId \n channel \n offset \n except \n frame
 */
import { randomBytes } from 'node:crypto'
import { historyStateTtl } from '../types.js'
import type { RedisKeys } from './keys.js'
import type { Link } from './link.js'
import type { PubSubMode } from './pubsub.js'
import type { BrokerNode, HistoryEntry, HistoryLimits, HistoryQuery, HistoryRead } from '../types.js'
import { publishScript, readScript } from './history-scripts.js'

type Reply = Array<string | number>

/** The two commands defined on the publisher connection (ioredis runs them by EVALSHA, EVAL when Redis forgot the script). */
interface HistoryCommands {
  channelsHistoryPublish (meta: string, log: string, ...args: Array<string | number>): Promise<number>
  channelsHistoryRead (meta: string, log: string, ...args: Array<string | number>): Promise<Reply>
}

const historyMark = 104 // 'h'

function newEpoch (): string {
  return randomBytes(9).toString('base64url')
}

/** What history needs of the connection. */
export interface RedisHistorySettings {
  keys: RedisKeys
  /** classic pub/sub on one Redis, sharded on a cluster */
  pubsub: PubSubMode
}

export class RedisHistory {
  /** Calls go through the publisher's link: its deadline and its bound on bytes in flight apply. */
  constructor (
    private readonly pub: Link,
    private readonly node: BrokerNode,
    private readonly settings: RedisHistorySettings
  ) {
    pub.client.defineCommand('channelsHistoryPublish', { numberOfKeys: 2, lua: publishScript })
    pub.client.defineCommand('channelsHistoryRead', { numberOfKeys: 2, lua: readScript })
  }

  /**
   * the keys of `channel`'s stream: in the slot of its pub/sub channel (one hash tag), so on a
   * cluster ioredis sends the scripts to the shard owning them all (it routes by the first key)
   */
  keys (channel: string): [meta: string, log: string] {
    return [this.settings.keys.historyMeta(channel), this.settings.keys.historyLog(channel)]
  }

  private stateTtl (limits: HistoryLimits): number {
    return Math.max(historyStateTtl, limits.ttl)
  }

  async publish (channel: string, frame: string, except: string | undefined, limits: HistoryLimits): Promise<number> {
    const [meta, log] = this.keys(channel)
    const head = `h\n${this.node.nodeId}\n${channel}\n`
    return await this.pub.run((client) => (client as unknown as HistoryCommands).channelsHistoryPublish(meta, log, newEpoch(),
      this.stateTtl(limits), frame, except ?? '', limits.size, limits.ttl, this.settings.keys.channel(channel), head, this.settings.pubsub.publishCommand), frame.length)
  }

  async read (channel: string, query: HistoryQuery, limits: HistoryLimits): Promise<HistoryRead> {
    const [meta, log] = this.keys(channel)
    const [mode, n] = 'after' in query ? ['after', query.after] : ['last', query.last]
    const reply = await this.pub.run((client) => (client as unknown as HistoryCommands).channelsHistoryRead(meta, log, newEpoch(),
      this.stateTtl(limits), mode, n, limits.ttl))
    const entries: HistoryEntry[] = []
    for (let i = 3; i + 2 < reply.length; i += 3) {
      const except = String(reply[i + 2])
      entries.push(except === '' ? { offset: Number(reply[i]), frame: String(reply[i + 1]) } : { offset: Number(reply[i]), frame: String(reply[i + 1]), except })
    }
    return { epoch: String(reply[0]), offset: Number(reply[1]), complete: Number(reply[2]) === 1, entries }
  }

  /** Delivers a history envelope; false for any other text. */
  receive (text: string): boolean {
    if (text.charCodeAt(0) !== historyMark) return false
    const fields: string[] = []
    let start = 0
    for (let i = 0; i < 5; i++) {
      const end = text.indexOf('\n', start)
      if (end === -1) {
        this.node.log.warn('channels: dropped a malformed history publication from redis')
        return true
      }
      fields.push(text.slice(start, end))
      start = end + 1
    }
    const [, , channel, offset, except] = fields
    this.node.deliverHistory?.({ channel, offset: Number(offset), frame: text.slice(start), except: except === '' ? undefined : except })
    return true
  }
}
