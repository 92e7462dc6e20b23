/**
 * The egress daemon's one error type. `reason` says what failed, with enough context for one
 * clear line to the operator. No reason ever carries a token value.
 */
import { Schema } from "effect"

export const CaFailed = Schema.TaggedStruct("CaFailed", { path: Schema.String, message: Schema.String })
export const RoutesUnreadable = Schema.TaggedStruct("RoutesUnreadable", { file: Schema.String, message: Schema.String })
export const RoutesInvalid = Schema.TaggedStruct("RoutesInvalid", { file: Schema.String, problems: Schema.Array(Schema.String) })
export const MissingToken = Schema.TaggedStruct("MissingToken", { env: Schema.String, host: Schema.String })
export const ListenFailed = Schema.TaggedStruct("ListenFailed", { host: Schema.String, port: Schema.Number, message: Schema.String })
export const BadArgument = Schema.TaggedStruct("BadArgument", { message: Schema.String })

export const EgressErrorReason = Schema.Union([CaFailed, RoutesUnreadable, RoutesInvalid, MissingToken, ListenFailed, BadArgument])
export type EgressErrorReason = typeof EgressErrorReason.Type

export class EgressError extends Schema.TaggedError<EgressError>()("EgressError", {
  reason: EgressErrorReason
}) {
  override get message(): string {
    const r = this.reason
    switch (r._tag) {
      case "CaFailed":
        return `egress CA at ${r.path}: ${r.message}`
      case "RoutesUnreadable":
        return `cannot read routes file ${r.file}: ${r.message}`
      case "RoutesInvalid":
        return `invalid routes file ${r.file}:\n${r.problems.map((p) => `  ${p}`).join("\n")}`
      case "MissingToken":
        return `route ${r.host} needs the token in $${r.env}, which is not set in the egress daemon's environment`
      case "ListenFailed":
        return `egress cannot listen on ${r.host}:${r.port}: ${r.message}`
      case "BadArgument":
        return r.message
    }
  }
}

export const errorMessage = (cause: unknown): string => (cause instanceof Error ? cause.message : String(cause))
