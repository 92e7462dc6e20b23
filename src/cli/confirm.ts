/**
 * The y/N questions of `bottle start`, on effect/cli's `Prompt.Confirm`.
 *
 * Guarantees: only an explicit `y` (or `t`) is yes. Enter (the default), `n`, Esc, Ctrl-C,
 * Ctrl-D and a closed stdin are no. `--yes` answers the start question without asking, and
 * never a credential grant's: a grant needs a person at a terminal, so with `--yes` or without
 * a terminal the answer is `needs-terminal`, before anything is asked or shown.
 */
import { Effect, Terminal } from "effect"
import { Prompt } from "effect/cli"

/** The question, then `[y/N]`; answered, the line reads `… y` or `… n`. */
export const confirm = (question: string): Effect.Effect<boolean, never, Prompt.Environment> =>
  Prompt.run(
    Prompt.Confirm({
      message: question,
      initial: false,
      label: { confirm: "y", deny: "n" },
      placeholder: { defaultDeny: "[y/N]" },
      theme: { prefix: "", pointerSmall: "", tick: "", ellipsis: "" }
    })
  ).pipe(
    // QuitError: Esc, Ctrl-C, Ctrl-D or the end of stdin. No answer is no (and ends the line).
    Effect.catch(() =>
      Terminal.Terminal.pipe(
        Effect.flatMap((t) => Effect.ignore(t.display("\n"))),
        Effect.as(false)
      )
    )
  )

export type Consent = "given" | "declined" | "needs-terminal"

export interface ConsentRequest {
  readonly question: string
  /** `--yes`: consent given for the start, never for a credential grant. */
  readonly yes: boolean
  /** Whether stdin is a terminal a person answers on. */
  readonly interactive: boolean
  /** The question approves a credential grant. */
  readonly grant: boolean
  /** Shown just before the question (e.g. the grant's warning); never when nothing is asked. */
  readonly before?: Effect.Effect<void>
}

/** Asks for consent when it must; see the module's guarantees. */
export const askConsent = (request: ConsentRequest): Effect.Effect<Consent, never, Prompt.Environment> => {
  if (request.yes && !request.grant) return Effect.succeed("given")
  if (request.yes || !request.interactive) return Effect.succeed("needs-terminal")
  return (request.before ?? Effect.void).pipe(
    Effect.andThen(confirm(request.question)),
    Effect.map((yes): Consent => (yes ? "given" : "declined"))
  )
}
