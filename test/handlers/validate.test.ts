/**
 * Compiled handler schemas (plugin/handlers/validate.ts): `check`, and `issues` in our own bounded shape
 * (at most maxReportedIssues, each text clipped to 200 characters). Data nested deeper than
 * the stack is test/hardening/hostile-frames.test.ts.
 */
import t from 'tap'
import { Type } from '@sinclair/typebox'
import { compileSchema, maxReportedIssues } from '../../plugin/handlers/validate.js'

t.test('check, and issues as { path, message }; the schema kept as registered', async (t) => {
  const schema = Type.Object({ text: Type.String() })
  const compiled = compileSchema(schema)
  t.equal(compiled.source, schema)
  t.equal(compiled.check({ text: 'hi' }), true)
  t.equal(compiled.check({ text: 1 }), false)
  t.same(compiled.issues({ text: 1 }), [{ path: '/text', message: 'Expected string' }])
  t.same(compiled.issues({ text: 'hi' }), [], 'valid data: no issue')
})

t.test('at most maxReportedIssues issues, exactly that many when there are more', async (t) => {
  t.equal(maxReportedIssues, 10)
  const compiled = compileSchema(Type.Array(Type.String()))
  t.equal(compiled.issues(Array.from({ length: 1000 }, (_, i) => i)).length, maxReportedIssues)
  t.equal(compiled.issues([1, 2, 3]).length, 3, 'fewer are all reported')
})

t.test('a path or message past 200 characters is clipped with an ellipsis; 200 are kept whole', async (t) => {
  const long = 'k'.repeat(300)
  const exact = 'e'.repeat(199) // its path '/eee…' is 200 characters
  const compiled = compileSchema(Type.Object({ [long]: Type.String(), [exact]: Type.String() }))
  const issues = compiled.issues({ [long]: 1, [exact]: 1 })
  const clipped = issues.find((issue) => issue.path.startsWith('/k'))
  t.equal(clipped?.path, `/${long}`.slice(0, 200) + '…')
  t.equal(issues.find((issue) => issue.path.startsWith('/e'))?.path, `/${exact}`, '200 characters: not clipped')
  const pattern = compileSchema(Type.String({ pattern: `^${'a'.repeat(300)}$` })).issues('b')
  t.equal(pattern.length, 1)
  t.equal(pattern[0].message.length, 201, 'a long message is clipped too')
  t.ok(pattern[0].message.endsWith('…'))
})
