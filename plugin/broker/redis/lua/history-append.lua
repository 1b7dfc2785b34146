-- Appends a publication to a history channel's stream and publishes its envelope, in one
-- atomic step: two nodes publishing at once produce one dense order that every subscriber
-- receives alike. Unless Redis got the call after its deadline: a publication the node already
-- reported failed is neither stored nor published later. When the stream's state is gone
-- (expired, or Redis restarted without persistence), a new epoch begins and the old log, if
-- any, is dropped: offsets of two epochs never mix.
--
-- After prelude-stream.lua (KEYS[1] to KEYS[3], ARGV[1] and ARGV[2] as it says), and:
-- ARGV[3]  the entry (opaque)
-- ARGV[4]  the most entries kept
-- ARGV[5]  ms the log outlives its last entry
-- ARGV[6]  the channel's pub/sub name
-- ARGV[7]  the head of the envelope: it goes out as head .. offset \n epoch \n entry
-- ARGV[8]  the publish command: PUBLISH, or SPUBLISH on a cluster
-- ARGV[9]  the deadline, ms on Redis' clock (0: none)
--
-- Returns { offset, epoch }, or -2 when too late (nothing stored, nothing published).
local deadline = tonumber(ARGV[9])
if deadline > 0 and ms > deadline then return -2 end

local epoch = redis.call('HGET', KEYS[1], 'e')
if not epoch then
  epoch = startingEpoch()
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'e', epoch, 'o', 0)
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])

local offset = redis.call('HINCRBY', KEYS[1], 'o', 1)
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[4], offset .. '-0', 'd', ARGV[3], 't', ms)
redis.call('PEXPIRE', KEYS[2], ARGV[5])
redis.call(ARGV[8], ARGV[6], ARGV[7] .. offset .. '\n' .. epoch .. '\n' .. ARGV[3])
return { offset, epoch }
