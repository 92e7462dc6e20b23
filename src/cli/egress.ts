/**
 * `bottle egress allow <slug> <host>` / `bottle egress deny <slug> <host>`: change the routes
 * of a running bottle. The bottle is found through the StateStore (an unknown name is one
 * line saying so); its routes file, in the egress daemon's subdir (bundle protocol), is edited
 * atomically (temp file + rename in the same directory); the daemon watches that directory
 * and applies the change live.
 */
import * as path from "node:path"
import { Console, Effect } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { DAEMONS, hostDirOf } from "../schema/BundleProtocol.ts"
import { allowHost, denyHost } from "../schema/RoutesFile.ts"
import { StateError, StateNotFound, StateStore } from "../services/StateStore.ts"

const slug = Argument.String("slug").pipe(Argument.withDescription("The bottle's slug"))
const host = Argument.String("host").pipe(Argument.withDescription("Host name, e.g. api.example.com or *.example.com"))

/** The routes file of bottle `slug` in `state`. */
export const bottleRoutesFile = (state: StateStore["Service"], slugName: string): string =>
  path.join(hostDirOf(state.bottleDir(slugName), DAEMONS.egress), "routes.yaml")

/** The routes file of an existing bottle; NotFound (one line) when there is no such bottle. */
const routesOf = Effect.fnUntraced(function*(slugName: string) {
  const state = yield* StateStore
  if (!(yield* state.exists(slugName))) return yield* new StateError({ reason: new StateNotFound({ slug: slugName }) })
  return bottleRoutesFile(state, slugName)
})

const allowPrivateIps = Flag.Boolean("allow-private-ips").pipe(
  Flag.withDescription("The host is an internal service: it may resolve to a loopback, private (RFC 1918), CGNAT or unique-local address"),
  Flag.withDefault(false)
)

export const allow = Command.make(
  "allow",
  { slug, host, allowPrivateIps },
  Effect.fn("egress.allow")(function*({ slug, host, allowPrivateIps }) {
    const file = yield* routesOf(slug)
    const outcome = yield* allowHost(file, host, { allowPrivateIps })
    const what = allowPrivateIps ? `${host} (private addresses included)` : host
    yield* Console.log(outcome === "changed" ? `egress: ${slug} may now reach ${what}` : `egress: ${slug} already routes ${what}`)
  })
).pipe(Command.withDescription("Allow a running bottle to reach a host (no credential, any path and method)"))

export const deny = Command.make(
  "deny",
  { slug, host },
  Effect.fn("egress.deny")(function*({ slug, host }) {
    const file = yield* routesOf(slug)
    const outcome = yield* denyHost(file, host)
    yield* Console.log(outcome === "changed" ? `egress: ${slug} may no longer reach ${host}` : `egress: ${slug} had no route for ${host}`)
  })
).pipe(Command.withDescription("Remove a running bottle's routes for a host"))

export const egress = Command.make("egress").pipe(
  Command.withDescription("Change the egress routes of a running bottle"),
  Command.withSubcommands([allow, deny])
)
