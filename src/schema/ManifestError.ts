/**
 * A manifest problem, located: file, line, key path, and what was expected. One error may
 * carry several problems (all found in one pass), rendered one per line.
 */
import { Schema } from "effect"

export const ManifestProblem = Schema.Struct({
  line: Schema.optionalKey(Schema.Number),
  column: Schema.optionalKey(Schema.Number),
  /** Dotted key path, e.g. `bottles.dev.egress.routes[0].host`; empty for the document. */
  path: Schema.String,
  message: Schema.String
})
export type ManifestProblem = typeof ManifestProblem.Type

export class ManifestError extends Schema.TaggedError<ManifestError>()("ManifestError", {
  file: Schema.String,
  problems: Schema.Array(ManifestProblem)
}) {
  override get message(): string {
    return this.problems
      .map((p) => {
        const where = p.line !== undefined ? `${this.file}:${p.line}${p.column !== undefined ? `:${p.column}` : ""}` : this.file
        return `${where}: ${p.path ? `${p.path}: ` : ""}${p.message}`
      })
      .join("\n")
  }
}

export const formatKeyPath = (path: ReadonlyArray<PropertyKey>): string =>
  path.reduce<string>(
    (acc, k) => (typeof k === "number" ? `${acc}[${k}]` : acc === "" ? String(k) : `${acc}.${String(k)}`),
    ""
  )
