/**
 * Compiles a handler's TypeBox schema once, at registration. On the hot path only `check`
 * runs; `issues` runs after a failed check and maps TypeBox's errors to our own
 * `{ path, message }` shape, so a TypeBox upgrade never changes what clients see.
 */
import type { TSchema } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import type { ValidationIssue } from '../../schemas/protocol.js'

/** At most this many issues are reported: a hostile payload must not buy a huge error frame. */
export const maxReportedIssues = 10
const maxIssueText = 200

export interface CompiledSchema {
  /** the schema as registered (the contract document describes it) */
  readonly source: TSchema
  check (value: unknown): boolean
  issues (value: unknown): ValidationIssue[]
}

function clip (text: string): string {
  return text.length > maxIssueText ? text.slice(0, maxIssueText) + '…' : text
}

/** What a client hears when its data is nested deeper than a recursive schema can be walked. */
const tooDeep: ValidationIssue = { path: '', message: 'the data is nested too deeply to validate' }

export function compileSchema (schema: TSchema): CompiledSchema {
  const compiled = TypeCompiler.Compile(schema)
  return {
    source: schema,
    // Checking and listing errors recurse with the data (recursive schemas): a hostile depth
    // must end as VALIDATION_FAILED, never as a RangeError that leaves the frame unanswered.
    check (value) {
      try {
        return compiled.Check(value)
      } catch {
        return false
      }
    },
    issues (value) {
      const issues: ValidationIssue[] = []
      try {
        for (const error of compiled.Errors(value)) {
          issues.push({ path: clip(error.path), message: clip(error.message) })
          if (issues.length >= maxReportedIssues) break
        }
      } catch {
        return [tooDeep]
      }
      return issues
    }
  }
}
