/**
 * Shell completion. `bottle completion <shell>` prints effect/cli's static script for the
 * command tree (commands, flags, choices) plus a hook that completes bottle names (after
 * exec, stop, resume, logs, egress allow|deny|ls, …) and agent names (after start, plan) by
 * asking the hidden `bottle __complete bottles|agents`, which prints one name a line and
 * never fails (a completion must not print errors into the user's prompt).
 */
import { Console, Effect } from "effect"
import { Argument, Command, Completions } from "effect/cli"
import { loadManifest } from "../programs/loadManifest.ts"
import { StateStore } from "../services/StateStore.ts"

/** Commands whose first argument is a bottle; `egress`-like groups take it after their subcommand. */
export const BOTTLE_COMMANDS = ["exec", "stop", "resume", "logs", "doctor", "cp", "pull", "dash", "approvals"] as const
export const BOTTLE_GROUPS = ["egress"] as const
export const AGENT_COMMANDS = ["start", "plan", "run"] as const

export const complete = Command.make(
  "__complete",
  { kind: Argument.Literals("kind", ["bottles", "agents"] as const) },
  Effect.fn(function*({ kind }) {
    const names = kind === "bottles"
      ? yield* StateStore.use((s) => s.list).pipe(Effect.orElseSucceed((): ReadonlyArray<string> => []))
      : yield* loadManifest({ cwd: process.cwd(), env: process.env }).pipe(
        Effect.map((m) => Object.keys(m.manifest.agents)),
        Effect.orElseSucceed((): ReadonlyArray<string> => [])
      )
    for (const n of names) yield* Console.log(n)
  })
).pipe(Command.withDescription("Print bottle or agent names for shell completion (one a line)"))

const bashHook = `
# bot-bottle: bottle and agent names, asked of \`bottle __complete\` at each <TAB>.
_bottle_dynamic()
{
  local cur="\${COMP_WORDS[COMP_CWORD]}" cmd="" group="" kind="" args=0 i w
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    [[ "$w" == -* ]] && continue
    if [[ -z "$cmd" ]]; then cmd="$w"
    elif [[ " ${BOTTLE_GROUPS.join(" ")} " == *" $cmd "* && -z "$group" ]]; then group="$w"
    else ((args++))
    fi
  done
  if [[ "$cur" != -* && $args -eq 0 ]]; then
    case "$cmd" in
      ${BOTTLE_COMMANDS.join("|")}) kind=bottles ;;
      ${BOTTLE_GROUPS.join("|")}) [[ -n "$group" ]] && kind=bottles ;;
      ${AGENT_COMMANDS.join("|")}) kind=agents ;;
    esac
  fi
  if [[ -n "$kind" ]]; then
    local IFS=$'\\n'
    COMPREPLY=($(compgen -W "$(command bottle __complete "$kind" 2>/dev/null)" -- "$cur"))
    return 0
  fi
  _bottle "$@"
}
complete -F _bottle_dynamic bottle
`

const fishHook = `
# bot-bottle: bottle and agent names, asked of \`bottle __complete\`.
complete -c bottle -n '__fish_seen_subcommand_from ${BOTTLE_COMMANDS.join(" ")}' -f -a '(bottle __complete bottles 2>/dev/null)'
complete -c bottle -n '__fish_seen_subcommand_from ${BOTTLE_GROUPS.join(" ")}; and __fish_seen_subcommand_from allow deny ls' -f -a '(bottle __complete bottles 2>/dev/null)'
complete -c bottle -n '__fish_seen_subcommand_from ${AGENT_COMMANDS.join(" ")}' -f -a '(bottle __complete agents 2>/dev/null)'
`

/** The completion script for `shell`, for the command tree `root`. */
export const completionScript = (root: Command.Command.Any, shell: "bash" | "zsh" | "fish"): string => {
  const descriptor = Completions.fromCommand(root)
  switch (shell) {
    case "bash":
      return Completions.generate("bottle", "bash", descriptor) + bashHook
    case "zsh":
      // zsh runs the bash script (names included) through its bash compatibility layer.
      return `autoload -U +X compinit && compinit\nautoload -U +X bashcompinit && bashcompinit\n${Completions.generate("bottle", "bash", descriptor)}${bashHook}`
    case "fish":
      return Completions.generate("bottle", "fish", descriptor) + fishHook
  }
}

/** `bottle completion <shell>`; `root` is the whole command tree (given lazily: it contains this command). */
export const completion = (root: () => Command.Command.Any) =>
  Command.make(
    "completion",
    { shell: Argument.Literals("shell", ["bash", "zsh", "fish"] as const).pipe(Argument.withDescription("Your shell")) },
    ({ shell }) => Console.log(completionScript(root(), shell))
  ).pipe(
    Command.withDescription("Print a shell completion script that also completes bottle and agent names"),
    Command.withExamples([
      { command: "bottle completion bash >> ~/.bashrc", description: "Bash" },
      { command: "bottle completion zsh >> ~/.zshrc", description: "zsh" },
      { command: "bottle completion fish > ~/.config/fish/completions/bottle.fish", description: "fish" }
    ])
  )
