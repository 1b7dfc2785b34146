-- Extends a node's registration, only where it still exists: a node whose keys expired while it
-- (or Redis) stalled must write them all again, not revive half of them.
--
-- KEYS[1]  the node's alive key
-- KEYS[2]  the node's session set
-- KEYS[3]  the set of registered node ids
-- ARGV[1]  the TTL, ms
-- ARGV[2]  the node's id
-- ARGV[3]  '1' when the node holds sessions (its session set must then exist), else '0'
-- ARGV[4]  the session set's TTL, ms (longer than the alive key's: see route-session.lua)
--
-- Returns { present, seconds, microseconds }: present is 1, or 0 when the alive key or a session
-- set the node should have is gone; the rest is Redis' TIME, for the node's view of its clock.
local now = redis.call('TIME')
if not redis.call('SET', KEYS[1], '1', 'PX', ARGV[1], 'XX') then return { 0, now[1], now[2] } end
if ARGV[3] == '1' and redis.call('PEXPIRE', KEYS[2], ARGV[4]) == 0 then return { 0, now[1], now[2] } end
redis.call('SADD', KEYS[3], ARGV[2])
return { 1, now[1], now[2] }
