-- Finds the node holding a session and publishes the envelope on that node's channel, in one
-- step, unless Redis got the call after its deadline.
--
-- A node whose alive key expired either died without closing or stalled (a long GC pause, a
-- frozen VM) and is about to register again. Its session set outlives the alive key (see
-- RedisRegistry): when it holds the session, the envelope is published on its channel all the
-- same, and the node is taken for dead (pruned) only when nobody listens there. A stalled
-- node's connection stays open, so it gets the send when it wakes instead of the sender being
-- told there is no such socket. A node whose session set expired too is pruned on the way.
--
-- KEYS[1]  the set of registered node ids
-- ARGV[1]  the alive key of a node, without its id       (every name in KEYS[1]'s slot)
-- ARGV[2]  the session set of a node, without its id
-- ARGV[3]  the pub/sub channel of a node, without its id
-- ARGV[4]  the session id
-- ARGV[5]  the envelope
-- ARGV[6]  the asking node's id (it checked its own sockets already)
-- ARGV[7]  the deadline, ms on Redis' clock (0: none)
-- ARGV[8]  the publish command: PUBLISH, or SPUBLISH on a cluster
--
-- Returns the publish's receiver count; 0 when no live node holds the session; -1 when the
-- node holding it does not listen; -2 when too late (nothing published).
local alive, sessions, direct = ARGV[1], ARGV[2], ARGV[3]
local session, envelope, asker = ARGV[4], ARGV[5], ARGV[6]

local deadline = tonumber(ARGV[7])
if deadline > 0 then
  local now = redis.call('TIME')
  if tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) > deadline then return -2 end
end

for _, node in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if node ~= asker then
    local live = redis.call('EXISTS', alive .. node) == 1
    if redis.call('SISMEMBER', sessions .. node, session) == 1 then
      local receivers = redis.call(ARGV[8], direct .. node, envelope)
      if receivers > 0 then return receivers end
      if live then return -1 end
      -- expired and nobody listens: it died
      redis.call('SREM', KEYS[1], node)
      redis.call('DEL', sessions .. node)
    elseif not live and redis.call('EXISTS', sessions .. node) == 0 then
      redis.call('SREM', KEYS[1], node)
    end
  end
end
return 0
