/**
 * BottleLive: every live layer the programs need, composed once. The `bottle` CLI
 * (src/cli/main.ts) and scripts using the public module (src/index.ts) run on this same layer,
 * so a script's bottle is the CLI's bottle: same backends, state root ($BOTTLE_STATE_DIR),
 * cache, git host and process runner.
 */
import { Layer } from "effect"
import { Backends } from "./Backends.ts"
import * as Cache from "./Cache.ts"
import * as Docker from "./Docker.ts"
import * as GitHost from "./GitHost.ts"
import * as ProcessRunner from "./ProcessRunner.ts"
import * as Smolvm from "./Smolvm.ts"
import * as StateStore from "./StateStore.ts"

export const layer = Layer.mergeAll(Backends.layer, Docker.layer, StateStore.layer, Cache.layer, GitHost.layer, ProcessRunner.layer, Smolvm.layer.pipe(Layer.provide(ProcessRunner.layer)))
