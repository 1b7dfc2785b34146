-- Removes a dead node's tracks from one channel's presence hash and publishes their leaves, in
-- one atomic step, so two nodes reaping at once send each leave once.
--
-- KEYS[1]  the channel's presence hash: ref -> "<nodeId>\n<key as JSON>\n<meta>"
-- ARGV[1]  the dead node's id
-- ARGV[2]  the channel's pub/sub name
-- ARGV[3]  the head of the leaves envelope: it goes out as head .. ref1 \n ref2 ...
-- ARGV[4]  the publish command: PUBLISH, or SPUBLISH on a cluster
--
-- Returns the number of tracks removed.
local owner = ARGV[1] .. '\n'
local all = redis.call('HGETALL', KEYS[1])
local refs = {}
for i = 1, #all, 2 do
  if string.sub(all[i + 1], 1, #owner) == owner then refs[#refs + 1] = all[i] end
end
if #refs == 0 then return 0 end
-- HDEL in chunks: unpack() of a very long list exceeds Lua's stack
for i = 1, #refs, 500 do redis.call('HDEL', KEYS[1], unpack(refs, i, math.min(i + 499, #refs))) end
redis.call(ARGV[4], ARGV[2], ARGV[3] .. table.concat(refs, '\n'))
return #refs
