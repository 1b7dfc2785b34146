/**
 * The page's plain JavaScript is type-checked (example-chat/tsconfig.page.json): its client
 * is typed by the chat's TypeBox schemas, so a wrong event or payload in app.js fails here.
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'

const root = fileURLToPath(new URL('../..', import.meta.url))
const configPath = join(root, 'example-chat', 'tsconfig.page.json')
const page = join(root, 'example-chat', 'public', 'app.js')

function check (replace?: [string, string]): string[] {
  const config = ts.readConfigFile(configPath, (path) => ts.sys.readFile(path))
  const parsed = ts.parseJsonConfigFileContent(config.config, ts.sys, dirname(configPath))
  const host = ts.createCompilerHost(parsed.options)
  const getSourceFile = host.getSourceFile.bind(host)
  host.getSourceFile = (name, version, ...rest) => name === page && replace !== undefined
    ? ts.createSourceFile(name, readFileSync(page, 'utf8').replace(...replace), version, true)
    : getSourceFile(name, version, ...rest)
  const program = ts.createProgram(parsed.fileNames, parsed.options, host)
  return ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'))
}

t.test('app.js type-checks against the chat schemas', async (t) => {
  t.same(check(), [])
})

t.test('a wrong payload in app.js would not', async (t) => {
  const errors = check(["client.request('chat', { text }, { channel })", "client.request('chat', { txt: text }, { channel })"])
  t.match(errors, [/'txt' does not exist/])
})
