/** A command's refusal: one line for the user, and the exit code. */
import { Schema } from "effect"

export class CliFailure extends Schema.TaggedError<CliFailure>()("CliFailure", {
  message: Schema.String,
  exitCode: Schema.optionalKey(Schema.Number)
}) {}
