/**
 * The Redis engine's Lua scripts: every .lua file is one script of the typed map and the other
 * way round; each loads into a real Redis (SCRIPT LOAD, on every master of a cluster), so a
 * syntax error fails here; a script called through the wrapper reads its reply by name; the
 * deadline Redis enforces refuses what comes in late, with nothing published.
 */
import t from 'tap'
import { createHash } from 'node:crypto'
import { readdirSync } from 'node:fs'
import { Redis } from 'ioredis'
import { RedisClock } from '../../../plugin/broker/redis/clock.js'
import { defineScripts, luaDirectory, preludeFile, runScript, scriptFile, scriptNames, scriptSources, type ScriptName } from '../../../plugin/broker/redis/scripts.js'
import { redisUrl, uniquePrefix, withRedis } from '../../redis/helpers.js'
import { forEachTarget } from '../../redis/targets.js'

t.test('every .lua file is a script of the map or a prelude of some, and every script has its file', async (t) => {
  const files = readdirSync(luaDirectory).filter((file) => file.endsWith('.lua')).sort()
  const preludes = scriptNames.map(preludeFile).filter((file) => file !== undefined)
  t.same([...new Set([...scriptNames.map(scriptFile), ...preludes])].sort(), files)
  t.same([...new Set(preludes)], ['prelude-stream.lua'], 'the history scripts share one')
  for (const name of ['historyAppend', 'historyRead'] as const) {
    t.ok(scriptSources().get(name)?.startsWith('-- Prepended to history-append.lua and history-read.lua'), `${name} starts with it`)
  }
  t.ok(files.length >= 6)
  for (const [name, source] of scriptSources()) t.ok(source.includes('return'), `${name} has a body`)
  t.equal(scriptSources(), scriptSources(), 'read once')
})

await forEachTarget(t, async (t, target) => {
  t.test('each script loads into Redis: SCRIPT LOAD answers its SHA-1', async (t) => {
    for (const master of await target.masters()) {
      for (const [name, source] of scriptSources()) {
        const sha = createHash('sha1').update(source).digest('hex')
        t.equal(await master.script('LOAD', source), sha, `${name} on ${master.options.port ?? ''}`)
      }
    }
  })
})

await withRedis(t, async () => {
  const redis = new Redis(redisUrl)
  const sub = new Redis(redisUrl)
  t.teardown(() => { redis.disconnect(); sub.disconnect() })
  defineScripts(redis)
  const clock = new RedisClock()
  const [seconds, micros] = await redis.time()
  clock.observe([String(seconds), String(micros)])

  t.test('Redis refuses a publication or a send that reaches it after its deadline, and publishes nothing', async (t) => {
    const prefix = uniquePrefix()
    const heard: string[] = []
    sub.on('message', (_channel: string, text: string) => heard.push(text))
    await sub.subscribe(`${prefix}:c`, `${prefix}:node:b`)
    const late = clock.deadline(-1000)
    const batch = (deadline: number, envelope: string): Array<string | number> => [deadline, 'PUBLISH', 1, envelope, `${prefix}:c`]
    t.equal(await runScript(redis, 'publishBatch', [`${prefix}:c`], batch(late, 'late')), 'late')
    t.equal(await runScript(redis, 'publishBatch', [`${prefix}:c`], batch(0, 'no deadline')), 'published')
    t.equal(await runScript(redis, 'publishBatch', [`${prefix}:c`], batch(clock.deadline(1000), 'in time')), 'published')

    await redis.multi().sadd(`${prefix}:nodes`, 'b').set(`${prefix}:alive:b`, '1', 'PX', 10_000).sadd(`${prefix}:sessions:b`, 's1').exec()
    const route = (deadline: number, sessionId: string, envelope: string): Promise<string> => runScript(redis, 'routeSession', [`${prefix}:nodes`],
      [`${prefix}:alive:`, `${prefix}:sessions:`, `${prefix}:node:`, sessionId, envelope, 'a', deadline, 'PUBLISH'])
    t.equal(await route(late, 's1', 'late send'), 'late')
    t.equal(await route(clock.deadline(1000), 's1', 'send'), 'sent')
    t.equal(await route(clock.deadline(1000), 'nobody', 'x'), 'none')
    await redis.del(`${prefix}:alive:b`)
    t.equal(await route(0, 's1', 'stalled'), 'sent', 'a node whose alive key expired but that still listens (it stalled) gets the send')
    t.equal(await route(0, 'nobody', 'x'), 'none')
    t.same(await redis.smembers(`${prefix}:nodes`), ['b'], 'and is not pruned')
    await sub.unsubscribe(`${prefix}:node:b`)
    t.equal(await route(0, 's1', 'x'), 'none', 'one whose alive key expired and that nobody listens for is dead')
    t.same(await redis.smembers(`${prefix}:nodes`), [], 'and is pruned')
    t.equal(await redis.exists(`${prefix}:sessions:b`), 0, 'with its sessions')
    await redis.multi().sadd(`${prefix}:nodes`, 'b', 'c').set(`${prefix}:alive:b`, '1', 'PX', 10_000).sadd(`${prefix}:sessions:b`, 's1').exec()
    t.equal(await route(0, 's1', 'unheard'), 'not-listening', 'a live node that does not listen')
    t.same((await redis.smembers(`${prefix}:nodes`)).sort(), ['b'], 'a node with neither alive key nor sessions is pruned on the way')
    await redis.del(`${prefix}:nodes`, `${prefix}:sessions:b`, `${prefix}:alive:b`)
    t.same(heard, ['no deadline', 'in time', 'send', 'stalled'], 'nothing late was published')
  })

  t.test('Redis refuses a history append after its deadline: nothing stored, nothing published', async (t) => {
    const prefix = uniquePrefix()
    const keys: [string, string, string] = [`${prefix}:hist:{c}:meta`, `${prefix}:hist:{c}:log`, `${prefix}:hist-base:{c}`]
    t.teardown(() => redis.del(...keys))
    const heard: string[] = []
    const listener = new Redis(redisUrl)
    t.teardown(() => { listener.disconnect() })
    listener.on('message', (_channel: string, text: string) => heard.push(text))
    await listener.subscribe(`${prefix}:ch:{c}`)
    const append = async (deadline: number, entry: string): Promise<unknown> => await runScript(redis, 'historyAppend', keys,
      ['base', 86_400_000, entry, 10, 60_000, `${prefix}:ch:{c}`, 'h|', 'PUBLISH', deadline])
    t.equal(await append(clock.deadline(-1000), 'late'), 'late')
    t.equal(await redis.exists(...keys), 0, 'a late append stores nothing, not even the stream or the base')
    t.match(await append(clock.deadline(1000), 'in time'), { offset: 1 })
    t.match(await append(0, 'no deadline'), { offset: 2 })
    t.match(await append(clock.deadline(-1000), 'late again'), 'late')
    t.equal(await redis.xlen(keys[1]), 2)
    await redis.ping()
    await listener.ping()
    t.same(heard.map((text) => text.split('\n').at(-1)), ['in time', 'no deadline'], 'nothing late was published')
    const epoch = await redis.hget(keys[0], 'e')
    t.same(await runScript(redis, 'historyRead', keys, ['base', 86_400_000, 'after', 0, 60_000]),
      { epoch, offset: 2, complete: true, entries: [{ offset: 1, entry: 'in time' }, { offset: 2, entry: 'no deadline' }] }, 'historyRead reads back what was stored')
  })

  t.test('a registration is extended only where it still exists', async (t) => {
    const prefix = uniquePrefix()
    const keys: [string, string, string] = [`${prefix}:alive:a`, `${prefix}:sessions:a`, `${prefix}:nodes`]
    t.teardown(() => redis.del(...keys))
    t.match(await runScript(redis, 'refreshRegistration', keys, [1000, 'a', '0', 10000]), { present: false, time: [/^\d+$/, /^\d+$/] })
    await redis.set(keys[0], '1')
    t.equal((await runScript(redis, 'refreshRegistration', keys, [1000, 'a', '1', 10000])).present, false, 'its session set is gone')
    await redis.sadd(keys[1], 's')
    t.equal((await runScript(redis, 'refreshRegistration', keys, [1000, 'a', '1', 10000])).present, true)
    t.ok(await redis.pttl(keys[0]) > 900 && await redis.pttl(keys[0]) <= 1000, 'the alive key extended by the TTL')
    t.ok(await redis.pttl(keys[1]) > 9000, 'the session set by its own, longer TTL')
    t.same(await redis.smembers(keys[2]), ['a'])
  })

  t.test('a script reply of the wrong shape (another version\'s script) is refused with an error naming the script and the reply', async (t) => {
    const prefix = uniquePrefix()
    /** runs `name` on a connection where it is defined as `lua` (a script of some other version) */
    const answerOf = async (name: ScriptName, lua: string, keyCount: number): Promise<unknown> => {
      const other = new Redis(redisUrl)
      try {
        other.defineCommand(`channels_${name}`, { numberOfKeys: keyCount, lua })
        const keys = Array.from({ length: keyCount }, (_, i) => `${prefix}:${i}`)
        return await runScript(other, name, keys as never, [] as never)
      } finally {
        other.disconnect()
      }
    }
    const refused = (name: ScriptName, reply: string): { message: string } =>
      ({ message: `redis script ${name} answered ${reply}: not what this version expects` })
    await t.rejects(answerOf('publishBatch', "return 'x'", 1), refused('publishBatch', '"x"'))
    await t.rejects(answerOf('routeSession', "return 'x'", 1), refused('routeSession', '"x"'))
    await t.rejects(answerOf('routeSession', 'return 2^60', 1), { message: /^redis script routeSession answered 11529215046068\d{5}: not what this version expects$/ }, 'an integer past the safe range')
    await t.rejects(answerOf('refreshRegistration', "return 'x'", 3), refused('refreshRegistration', '"x"'), 'not a list')
    await t.rejects(answerOf('refreshRegistration', 'return {1, 2}', 3), refused('refreshRegistration', '[1,2]'), 'a list too short')
    await t.rejects(answerOf('refreshRegistration', "return {'x', 's', 'm'}", 3), refused('refreshRegistration', '"x"'))
    await t.rejects(answerOf('refreshRegistration', "return {1, 5, 'm'}", 3), refused('refreshRegistration', '5'))
    await t.rejects(answerOf('refreshRegistration', "return {1, 's', 5}", 3), refused('refreshRegistration', '5'))
    await t.rejects(answerOf('historyAppend', "return {'x', 'e'}", 3), refused('historyAppend', '"x"'))
    await t.rejects(answerOf('historyAppend', 'return {1, 2}', 3), refused('historyAppend', '2'))
    await t.rejects(answerOf('historyAppend', 'return {1}', 3), refused('historyAppend', '[1]'), 'a list too short')
    await t.rejects(answerOf('historyRead', "return 'x'", 3), refused('historyRead', '"x"'), 'not a list')
    await t.rejects(answerOf('historyRead', "return {'e', 1, 1}", 3), refused('historyRead', '["e",1,1]'), 'a list too short')
    await t.rejects(answerOf('historyRead', "return {'e', 1, 1, {}, 5}", 3), refused('historyRead', '["e",1,1,[],5]'), 'a list too long')
    await t.rejects(answerOf('historyRead', "return {'e', 1, 1, 'x'}", 3), refused('historyRead', '"x"'), 'entries not a list')
    await t.rejects(answerOf('historyRead', 'return {7, 1, 1, {}}', 3), refused('historyRead', '7'), 'an epoch that is not text')
    await t.rejects(answerOf('historyRead', "return {'e', 'o', 1, {}}", 3), refused('historyRead', '"o"'), 'an offset that is not an integer')
    await t.rejects(answerOf('historyRead', "return {'e', 1, 'c', {}}", 3), refused('historyRead', '"c"'), 'a completeness that is not an integer')
    await t.rejects(answerOf('historyRead', "return {'e', 2, 1, {1, 'a'}}", 3), refused('historyRead', '1'), 'an entry\'s offset that is not text')
    await t.rejects(answerOf('historyRead', "return {'e', 2, 1, {'1', 'a', '2', 9}}", 3), refused('historyRead', '9'), 'an entry that is not text')
    t.same(await answerOf('historyRead', "return {'e', 2, 1, {'1', 'a', '2', 'b'}}", 3),
      { epoch: 'e', offset: 2, complete: true, entries: [{ offset: 1, entry: 'a' }, { offset: 2, entry: 'b' }] }, 'entries read in pairs, oldest first')
    t.same(await answerOf('historyRead', "return {'e', 3, 0, {}}", 3), { epoch: 'e', offset: 3, complete: false, entries: [] }, 'complete only when 1')
    t.same(await answerOf('historyRead', "return {'e', 3, 2, {}}", 3), { epoch: 'e', offset: 3, complete: false, entries: [] })
    t.same(await answerOf('historyRead', "return {'e', 3, 1, {'3', 'c', '4'}}", 3), { epoch: 'e', offset: 3, complete: true, entries: [{ offset: 3, entry: 'c' }] },
      'an offset without its entry at the end is left out')
    await t.rejects(answerOf('presenceReap', "return 'x'", 1), refused('presenceReap', '"x"'))
    t.equal(await answerOf('presenceReap', 'return 3', 1), 3, 'presenceReap answers how many it reaped')
    t.equal(await answerOf('routeSession', 'return 2', 1), 'sent')
  })

  t.test('a script run on a connection where the scripts were not defined fails with a clear error', async (t) => {
    const bare = new Redis(redisUrl, { lazyConnect: true })
    t.teardown(() => { bare.disconnect() })
    await t.rejects(runScript(bare, 'presenceReap', ['k'], ['a', 'c', 'h', 'p']),
      { message: 'redis script presenceReap is not defined on this connection' })
  })
})
