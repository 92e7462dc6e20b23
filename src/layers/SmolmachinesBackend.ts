/**
 * The smolmachines backend (a smolvm microVM agent beside a bundle container; its own issue
 * builds it). Until then every operation fails with BackendNotBuilt, `preflight` first, so a
 * launch refuses it before acquiring anything; `inspect` and `removeOrphans` find nothing,
 * since nothing can have been started.
 */
import { Effect, Layer } from "effect"
import { Backend, BackendError, BackendNotBuilt } from "../services/Backend.ts"

const notBuilt = new BackendError({ backend: "smolmachines", reason: new BackendNotBuilt({ backend: "smolmachines" }) })

export const layer = Layer.succeed(Backend, Backend.of({
  name: "smolmachines",
  preflight: Effect.fail(notBuilt),
  addressesInUse: Effect.succeed([]),
  images: () => Effect.fail(notBuilt),
  network: () => Effect.fail(notBuilt),
  bundle: () => Effect.fail(notBuilt),
  sandbox: () => Effect.fail(notBuilt),
  exec: () => Effect.fail(notBuilt),
  attach: () => Effect.fail(notBuilt),
  session: () => Effect.fail(notBuilt),
  copyOut: () => Effect.fail(notBuilt),
  copyIn: () => Effect.fail(notBuilt),
  inspect: () => Effect.succeed([]),
  logs: () => Effect.fail(notBuilt),
  remove: () => Effect.succeed({ leftovers: [], holdsAddress: false }),
  removeOrphans: () => Effect.succeed([])
}))
