/**
 * Bench helper process: the egress daemon (`runEgress`) on an ephemeral loopback port.
 * Prints `{"port":…}` on stdout when ready; runs until SIGTERM.
 * argv[2]: JSON { routesFile, stateDir, extraCa, dns, env }.
 */
import { Effect } from "effect"
import { runEgress } from "../../bundle/egress/daemon.ts"

const input = JSON.parse(process.argv[2] ?? "{}") as { routesFile: string; stateDir: string; extraCa: string; dns: string; env: Record<string, string> }
const program = Effect.scoped(
  Effect.gen(function*() {
    const egress = yield* runEgress({
      routesFile: input.routesFile,
      stateDir: input.stateDir,
      listen: { host: "127.0.0.1", port: 0 },
      bottle: "bench",
      extraCaFiles: [input.extraCa],
      env: input.env,
      dnsServers: [input.dns]
    })
    process.stdout.write(JSON.stringify({ port: egress.port }) + "\n")
    yield* Effect.never
  })
).pipe(Effect.provide(Effect.Logger ?? []))
const controller = Effect.runFork(program as Effect.Effect<void, unknown>)
process.on("SIGTERM", () => {
  Effect.runFork(controller.interruptAsFork ? Effect.void : Effect.void)
  process.exit(0)
})
