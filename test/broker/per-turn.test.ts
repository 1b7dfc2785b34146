/**
 * perTurn: the calls of one event-loop turn share one run of the work, at the turn's end; a
 * call made while a run is under way waits for the next run; a failed run fails every call it
 * carried, and the next turn runs again.
 */
import t from 'tap'
import { setImmediate as nextTurn } from 'node:timers/promises'
import { perTurn } from '../../plugin/broker/per-turn.js'

t.test('the calls of one turn share one run, which starts after the turn', async (t) => {
  let runs = 0
  const ofThisTurn = perTurn(async () => { runs++ })
  const calls = [ofThisTurn(), ofThisTurn(), ofThisTurn()]
  t.equal(runs, 0, 'nothing runs within the turn')
  await Promise.all(calls)
  t.equal(runs, 1, 'three calls, one run')
  await Promise.all([ofThisTurn(), ofThisTurn()])
  t.equal(runs, 2, 'a later turn gets a run of its own')
})

t.test('a call made while a run is under way waits for the next run', async (t) => {
  const started: number[] = []
  let release: () => void = () => {}
  let run = 0
  const ofThisTurn = perTurn(async () => {
    started.push(++run)
    if (run === 1) await new Promise<void>((resolve) => { release = resolve })
  })
  let firstDone = false
  const first = ofThisTurn().then(() => { firstDone = true })
  await nextTurn()
  await nextTurn()
  t.same(started, [1], 'the first run is under way')
  let lateDone = false
  const late = ofThisTurn().then(() => { lateDone = true })
  await nextTurn()
  await nextTurn()
  t.same(started, [1, 2], 'the late call got a run of its own, while the first still runs')
  await late
  t.equal(lateDone, true)
  t.equal(firstDone, false, 'the first call still waits for its own run')
  release()
  await first
  t.equal(firstDone, true)
})

t.test('a failed run fails every call it carried; the next turn runs again', async (t) => {
  let fail = true
  let runs = 0
  const ofThisTurn = perTurn(async () => {
    runs++
    if (fail) throw new Error('the store is down')
  })
  const outcomes = await Promise.allSettled([ofThisTurn(), ofThisTurn()])
  t.same(outcomes.map((outcome) => outcome.status), ['rejected', 'rejected'], 'both callers learn of it')
  t.match((outcomes[0] as PromiseRejectedResult).reason, { message: 'the store is down' })
  fail = false
  await ofThisTurn()
  t.equal(runs, 2, 'the failure did not stick: a new run, which succeeds')
})
