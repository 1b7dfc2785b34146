-- Prepended to history-append.lua and history-read.lua: Redis' clock, and the epoch a stream of
-- the channel gets when it starts now.
--
-- Only a publication creates a stream (its meta hash). A read of a channel never published
-- stores nothing of the channel and answers the epoch its first publication would get now. That
-- epoch is derived, not drawn: a hash of the slot's random base (KEYS[3], one small key per
-- slot, whatever the number of channels), the current period (Redis' time divided by ARGV[2],
-- how long a stream outlives its last use) and the channel's meta key. A stream lives at least
-- one period, so two streams of one channel never start in one period and never share an
-- epoch; a flush or a restart without persistence loses the base too, and every epoch changes.
--
-- KEYS[1]  the stream's meta hash: e = epoch, o = top offset   (KEYS share the channel's slot)
-- KEYS[2]  the stream's log: id <offset>-0, fields d (the entry) and t (ms, Redis' clock)
-- KEYS[3]  the slot's epoch base (a random string)
-- ARGV[1]  a random string: the base when the slot has none
-- ARGV[2]  ms the meta hash outlives its last use, and the length of a period
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)

local function startingEpoch ()
  local base = redis.call('GET', KEYS[3])
  if not base then base = ARGV[1] end
  redis.call('SET', KEYS[3], base, 'PX', ARGV[2])
  local period = math.floor(ms / tonumber(ARGV[2]))
  return string.sub(redis.sha1hex(base .. '\n' .. string.format('%d', period) .. '\n' .. KEYS[1]), 1, 16)
end
