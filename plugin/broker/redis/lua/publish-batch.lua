-- Publishes a batch of envelopes in order, unless Redis got the call after its deadline: a
-- publication the node already reported failed must not be delivered later.
--
-- KEYS[1]  one of the pub/sub channels (routes the call to its shard on a cluster, where every
--          channel of one call shares its slot)
-- ARGV[1]  the deadline, ms on Redis' clock (0: none)
-- ARGV[2]  the publish command: PUBLISH, or SPUBLISH on a cluster
-- then per envelope: the number of channels, the envelope, the channels
--
-- Returns 1, or -2 when too late (nothing published).
local deadline = tonumber(ARGV[1])
if deadline > 0 then
  local now = redis.call('TIME')
  if tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) > deadline then return -2 end
end

local command = ARGV[2]
local i = 3
while i <= #ARGV do
  local count, envelope = tonumber(ARGV[i]), ARGV[i + 1]
  for j = i + 2, i + 1 + count do redis.call(command, ARGV[j], envelope) end
  i = i + 2 + count
end
return 1
