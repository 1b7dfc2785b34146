import neostandard from 'neostandard'
import importX from 'eslint-plugin-import-x'
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript'

const sources = ['plugin/**/*.ts', 'client/**/*.ts', 'schemas/**/*.ts']

/**
 * Arrows that point one way (docs/architecture.md, "Layers"). Each zone: files under `target`
 * may not import anything under `from`. Type-only imports count too: a type is still a
 * dependency a reader must follow.
 */
const layers = [
  { target: './schemas', from: ['./plugin', './client'], message: 'the wire protocol knows neither the server nor the client' },
  { target: './client', from: './plugin', message: 'the client never imports the server' },
  {
    target: './plugin/broker',
    from: ['./plugin/history', './plugin/presence', './plugin/connection', './plugin/node', './plugin/http',
      './plugin/contract', './plugin/handlers', './plugin/outbound', './plugin/channel-steps.ts'],
    message: 'a broker knows no sockets, no channel state and no node'
  },
  { target: './plugin/broker/nats', from: ['./plugin/broker/redis', './plugin/broker/memory'], message: 'an engine never imports another engine' },
  {
    target: ['./plugin/history', './plugin/presence'],
    from: ['./plugin/connection', './plugin/node', './plugin/http', './plugin/contract'],
    message: 'channel state knows no connection (its hooks are in plugin/channel-steps.ts)'
  },
  {
    target: './plugin/requests',
    from: ['./plugin/connection', './plugin/node', './plugin/http', './plugin/contract', './plugin/history', './plugin/presence', './plugin/users'],
    message: 'requests know connections only by an interface (Askable)'
  },
  {
    target: './plugin/users',
    from: ['./plugin/connection', './plugin/node', './plugin/http', './plugin/contract', './plugin/history', './plugin/presence'],
    message: 'users know connections only by an interface (UserSocket, Identifiable)'
  },
  { target: './plugin/history', from: './plugin/presence', message: 'history and presence are apart' },
  { target: './plugin/presence', from: './plugin/history', message: 'history and presence are apart' },
  {
    target: './plugin/channel-steps.ts',
    from: ['./plugin/connection', './plugin/node', './plugin/history', './plugin/presence'],
    message: 'the channel-step hooks are neutral'
  },
  {
    target: './plugin/node',
    from: ['./plugin/connection', './plugin/http', './plugin/contract'],
    message: 'the node knows connections only by an interface (LocalSocket, Member)'
  },
  {
    target: ['./plugin/outbound', './plugin/handlers'],
    from: ['./plugin/connection', './plugin/node', './plugin/history', './plugin/presence', './plugin/http', './plugin/broker'],
    message: 'outbound writes and the handler registry sit below every feature that uses them'
  },
  {
    target: './plugin/observability',
    from: ['./plugin/connection', './plugin/node', './plugin/http', './plugin/contract', './plugin/handlers', './plugin/outbound',
      './plugin/history', './plugin/presence', './plugin/broker', './plugin/channel-steps.ts', './plugin/register.ts', './plugin/index.ts'],
    message: 'the events sit below everything that publishes them: observability imports no feature of the plugin'
  },
  {
    target: ['./plugin/broker', './plugin/node', './plugin/connection', './plugin/history', './plugin/presence', './plugin/outbound',
      './plugin/handlers', './plugin/http', './plugin/contract', './plugin/users', './plugin/observability', './plugin/channel-steps.ts'],
    from: './plugin/admin',
    message: 'the admin page sits on top: nothing below it imports it'
  },
  {
    target: './plugin/http',
    from: ['./plugin/connection', './plugin/node', './plugin/history', './plugin/presence', './plugin/broker', './plugin/contract'],
    message: 'the HTTP side (upgrades, origins, cap, static client) stands alone'
  }
]

export default [
  ...neostandard({ ts: true, ignores: ['dist/**', 'coverage/**', '.tap/**', 'bench/results/**', 'reports/**', '.stryker-tmp/**'] }),
  {
    // The TypeBox idiom: a schema value and its Static type share one name on purpose.
    files: ['schemas/**/*.ts', 'example-chat/**/*.ts', 'test/**/*.ts'],
    rules: { '@typescript-eslint/no-redeclare': 'off' }
  },
  {
    // Type tests are only type-checked: `void expr` marks a value used without running anything.
    files: ['test/types/**/*.ts'],
    rules: { 'no-void': 'off' }
  },
  {
    // The source layout: a file as long as its one job needs (a warning past 500 lines asks
    // whether a second job hides in it, it does not cut), no import cycle, layers one way.
    files: sources,
    plugins: { 'import-x': importX },
    settings: {
      ...importX.flatConfigs.typescript.settings,
      'import-x/resolver-next': [createTypeScriptImportResolver({ project: './tsconfig.json' })]
    },
    rules: {
      'max-lines': ['warn', { max: 500 }],
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
      'import-x/no-restricted-paths': ['error', { basePath: import.meta.dirname, zones: layers }]
    }
  }
]
