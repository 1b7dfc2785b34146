/**
 * What the doc tests read from the sources without running them: the members an interface
 * declares (an option list), the string literals a folder uses (error codes).
 */
import { readdirSync, readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import ts from 'typescript'
import { root } from './markdown.js'

/** The property names `interface name` declares in `file` (relative to the repository), in order. */
export function interfaceMembers (file: string, name: string): string[] {
  const source = ts.createSourceFile(file, readFileSync(join(root, file), 'utf8'), ts.ScriptTarget.ES2022, true)
  const found = source.statements.find((statement): statement is ts.InterfaceDeclaration =>
    ts.isInterfaceDeclaration(statement) && statement.name.text === name)
  if (found === undefined) throw new Error(`no interface ${name} in ${file}`)
  // Inherited members would be missed: read them too before a doc test relies on this.
  if (found.heritageClauses !== undefined) throw new Error(`${name} extends another interface: teach interfaceMembers() to follow it`)
  return found.members.map((member) => {
    if (!ts.isPropertySignature(member) || member.name === undefined) throw new Error(`${name}: a member that is not a plain property`)
    return member.name.getText(source)
  })
}

/** The .ts files under `folder` (relative to the repository), recursively. */
export function sourceFiles (folder: string): string[] {
  return readdirSync(join(root, folder), { recursive: true, encoding: 'utf8' })
    .filter((name) => name.endsWith('.ts') && !name.endsWith('.d.ts'))
    .map((name) => relative(root, join(root, folder, name)))
}

/**
 * Every string literal (quoted, not in a comment) under `folder` that matches `pattern`, with
 * the files it is in.
 */
export function stringLiterals (folder: string, pattern: RegExp): Map<string, string[]> {
  const found = new Map<string, string[]>()
  for (const file of sourceFiles(folder)) {
    const source = ts.createSourceFile(file, readFileSync(join(root, file), 'utf8'), ts.ScriptTarget.ES2022, true)
    const visit = (node: ts.Node): void => {
      if ((ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) && pattern.test(node.text)) {
        found.set(node.text, [...(found.get(node.text) ?? []), file])
      }
      node.forEachChild(visit)
    }
    visit(source)
  }
  return found
}

/** The first arguments that are string literals in every `new className(...)` under `folder`. */
export function literalFirstArguments (folder: string, className: string): Set<string> {
  const found = new Set<string>()
  for (const file of sourceFiles(folder)) {
    const source = ts.createSourceFile(file, readFileSync(join(root, file), 'utf8'), ts.ScriptTarget.ES2022, true)
    const visit = (node: ts.Node): void => {
      if (ts.isNewExpression(node) && node.expression.getText(source) === className) {
        const first = node.arguments?.[0]
        if (first !== undefined && ts.isStringLiteral(first)) found.add(first.text)
      }
      node.forEachChild(visit)
    }
    visit(source)
  }
  return found
}
