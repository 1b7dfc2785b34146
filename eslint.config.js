import neostandard from 'neostandard'

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
  }
]
