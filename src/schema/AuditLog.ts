/**
 * The egress audit log's format, shared by the egress daemon (which writes it, see
 * bundle/egress/audit.ts) and the CLI (`bottle logs --egress`, which reads it): one JSON line
 * per request in `<egress dir>/audit.log`, rotated to `audit.log.1` … (1 newest).
 */
import * as fsp from "node:fs/promises"
import * as path from "node:path"
import { Effect, Schema } from "effect"

export const AuditDecision = Schema.Literals(["allow", "deny", "dlp-block", "error"])
export type AuditDecision = typeof AuditDecision.Type

export const AuditEntry = Schema.Struct({
  time: Schema.String,
  bottle: Schema.String,
  method: Schema.String,
  host: Schema.String,
  path: Schema.String,
  status: Schema.Number,
  bytes_in: Schema.Number,
  bytes_out: Schema.Number,
  duration_ms: Schema.Number,
  decision: AuditDecision,
  rule: Schema.String,
  reason: Schema.optionalKey(Schema.String),
  /** How many refusals the line stands for (rate-limited refusals, see admission.ts); 1 when absent. */
  count: Schema.optionalKey(Schema.Number)
})
export type AuditEntry = typeof AuditEntry.Type

export class AuditUnreadable extends Schema.TaggedError<AuditUnreadable>()("AuditUnreadable", { path: Schema.String, detail: Schema.String }) {
  override get message(): string {
    return `cannot read egress audit log ${this.path}: ${this.detail}`
  }
}

const decodeEntry = Schema.decodeUnknownOption(Schema.fromJsonString(AuditEntry))

/**
 * Reads the audit log, oldest first (rotated files, then the live one). Lines that are not
 * audit entries (a torn last line) are skipped.
 */
export const readAudit = Effect.fn("readAudit")(function*(stateDir: string): Effect.fn.Return<ReadonlyArray<AuditEntry>, AuditUnreadable> {
  const file = path.join(stateDir, "audit.log")
  const files = yield* Effect.tryPromise({
    try: async () => {
      const names = await fsp.readdir(stateDir)
      const rotated = names
        .map((n) => /^audit\.log\.(\d+)$/.exec(n))
        .filter((m): m is RegExpExecArray => m !== null)
        .map((m) => Number(m[1]))
        .sort((a, b) => b - a)
        .map((i) => `${file}.${i}`)
      return names.includes("audit.log") ? [...rotated, file] : rotated
    },
    catch: (cause) => new AuditUnreadable({ path: file, detail: cause instanceof Error ? cause.message : String(cause) })
  })
  const out: Array<AuditEntry> = []
  for (const f of files) {
    const text = yield* Effect.tryPromise({
      try: () => fsp.readFile(f, "utf8"),
      catch: (cause) => new AuditUnreadable({ path: f, detail: cause instanceof Error ? cause.message : String(cause) })
    })
    for (const line of text.split("\n")) {
      if (line.length === 0) continue
      const entry = decodeEntry(line)
      if (entry._tag === "Some") out.push(entry.value)
    }
  }
  return out
})
