/**
 * The Lua scripts of Redis history. Per history channel, under the broker's prefix, two keys
 * sharing one hash tag with the channel's pub/sub name (RedisKeys), so on Redis Cluster a
 * script's keys and the shard channel it publishes on are all in the channel's one slot:
 *
 *   <prefix>:hist:{<channel>}:meta   hash: e = epoch, o = top offset   (expires 24 h after use)
 *   <prefix>:hist:{<channel>}:log    stream of entries, id <offset>-0, fields f (the frame),
 *                                    x (the excepted session or ''), t (ms, Redis' clock)
 *                                    (at most `size` entries; the key expires `ttl` after the last)
 *
 * A publication is one script: assign the offset, store the entry, publish it, so two nodes
 * publishing at once produce one dense order that every subscriber receives alike. When the
 * meta key is gone (expired, or Redis restarted without persistence), a new epoch begins and
 * the old log, if any, is dropped: offsets of two epochs never mix.
 */

/** Creates the stream state when it is missing (shared by both scripts). */
const ensureStream = `
local epoch = redis.call('HGET', KEYS[1], 'e')
if not epoch then
  epoch = ARGV[1]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'e', epoch, 'o', 0)
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
`

/**
 * KEYS: meta, log. ARGV: new epoch, meta ttl, frame (a JSON object), except ('' for none),
 * size, ttl, pub/sub channel, envelope head, publish command ('PUBLISH' on one Redis,
 * 'SPUBLISH' on a cluster: the channel's subscribers listen on a shard channel there).
 * Returns the offset.
 */
export const publishScript = `${ensureStream}
local offset = redis.call('HINCRBY', KEYS[1], 'o', 1)
local frame = string.sub(ARGV[3], 1, -2) .. ',"offset":' .. offset .. '}'
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[5], offset .. '-0', 'f', frame, 'x', ARGV[4], 't', now)
redis.call('PEXPIRE', KEYS[2], ARGV[6])
redis.call(ARGV[9], ARGV[7], ARGV[8] .. offset .. '\\n' .. ARGV[4] .. '\\n' .. frame)
return offset
`

/**
 * KEYS: meta, log. ARGV: new epoch, meta ttl, mode ('after' or 'last'), n, ttl.
 * Returns { epoch, top, complete (1/0), offset1, frame1, except1, offset2, ... } oldest first;
 * 'after' returns entries only when every publication after n is kept (all or nothing).
 */
export const readScript = `${ensureStream}
local top = tonumber(redis.call('HGET', KEYS[1], 'o'))
local n = tonumber(ARGV[4])
local oldest = now - tonumber(ARGV[5])
local out = { epoch, top, 1 }
if ARGV[3] == 'after' then
  if n > top then return { epoch, top, 0 } end
  if n == top then return out end
  local raw = redis.call('XRANGE', KEYS[2], (n + 1) .. '-0', '+')
  if #raw ~= top - n then return { epoch, top, 0 } end
  for i, entry in ipairs(raw) do
    local fields = entry[2]
    if i == 1 and (tonumber(fields[6]) < oldest or entry[1] ~= (n + 1) .. '-0') then return { epoch, top, 0 } end
    table.insert(out, string.sub(entry[1], 1, -3))
    table.insert(out, fields[2])
    table.insert(out, fields[4])
  end
  return out
end
if n == 0 then return out end
local raw = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', n)
local kept = #raw
for i, entry in ipairs(raw) do
  if tonumber(entry[2][6]) < oldest then
    kept = i - 1
    break
  end
end
for i = kept, 1, -1 do
  local entry = raw[i]
  table.insert(out, string.sub(entry[1], 1, -3))
  table.insert(out, entry[2][2])
  table.insert(out, entry[2][4])
end
return out
`
