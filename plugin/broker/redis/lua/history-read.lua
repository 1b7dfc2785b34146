-- Reads a history channel's stream: its epoch, its top offset and the entries asked for, oldest
-- first. 'after' is all or nothing: entries only when every publication after n is still kept.
-- A channel without a stream (never published, or its state is gone) answers offset 0 and the
-- epoch its first publication would get now, and stores nothing of the channel.
--
-- After prelude-stream.lua (KEYS[1] to KEYS[3], ARGV[1] and ARGV[2] as it says), and:
-- ARGV[3]  'after' or 'last'
-- ARGV[4]  n: the offset after which to read, or how many of the last entries
-- ARGV[5]  ms an entry is kept
--
-- Returns { epoch, top offset, complete (1 or 0), { offset1, entry1, offset2, entry2, ... } }.
local n = tonumber(ARGV[4])
local epoch = redis.call('HGET', KEYS[1], 'e')
if not epoch then
  local complete = 0
  if ARGV[3] == 'last' or n == 0 then complete = 1 end
  return { startingEpoch(), 0, complete, {} }
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
local oldest = ms - tonumber(ARGV[5])

local top = tonumber(redis.call('HGET', KEYS[1], 'o'))

-- a log entry as { id, offset, entry, at }, its fields read by name
local function read (raw)
  local fields = {}
  for i = 1, #raw[2], 2 do fields[raw[2][i]] = raw[2][i + 1] end
  return { id = raw[1], offset = string.sub(raw[1], 1, -3), entry = fields.d or '', at = tonumber(fields.t) or 0 }
end

local entries = {}
if ARGV[3] == 'after' then
  if n > top then return { epoch, top, 0, entries } end
  if n == top then return { epoch, top, 1, entries } end
  local raw = redis.call('XRANGE', KEYS[2], (n + 1) .. '-0', '+')
  if #raw ~= top - n then return { epoch, top, 0, {} } end
  for i, each in ipairs(raw) do
    local stored = read(each)
    if i == 1 and (stored.at < oldest or stored.id ~= (n + 1) .. '-0') then return { epoch, top, 0, {} } end
    table.insert(entries, stored.offset)
    table.insert(entries, stored.entry)
  end
  return { epoch, top, 1, entries }
end

if n == 0 then return { epoch, top, 1, entries } end
local raw = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', n)
local kept = #raw
for i, each in ipairs(raw) do
  if read(each).at < oldest then
    kept = i - 1
    break
  end
end
for i = kept, 1, -1 do
  local stored = read(raw[i])
  table.insert(entries, stored.offset)
  table.insert(entries, stored.entry)
end
return { epoch, top, 1, entries }
