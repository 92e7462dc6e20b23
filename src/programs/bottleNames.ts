/**
 * The names and labels of a bottle's engine objects. One engine is shared by every state root
 * on the host (two users, a CI runner's jobs, BOTTLE_STATE_DIR set differently), and each root
 * picks its slugs on its own: so every name carries a short stable id of the state root beside
 * the slug, and every object is labelled with both. Two roots can then run bottles of the same
 * slug side by side, and `ls`/`stop`/`cleanup` of one root never see or touch another's.
 *
 * The id is a hash of the root's canonical path (symlinks resolved up to the part that exists),
 * so every spelling of one root agrees on it, and it does not change once the root is created.
 */
import { createHash } from "node:crypto"
import { LABEL_ROLE, LABEL_ROOT, LABEL_SLUG } from "../services/Docker.ts"
import { canonicalPath } from "./canonicalPath.ts"

/** 8 hex digits: a handful of roots share an engine, and a collision would only share names. */
export const stateRootId = (root: string): string =>
  createHash("sha256").update(canonicalPath(root)).digest("hex").slice(0, 8)

export type BottleRole = "agent" | "bundle" | "internal" | "egress" | "workspace" | "workspace-upper" | "workspace-scratch" | "home"

export interface BottleNames {
  readonly rootId: string
  /** `bottle-<slug>-<root id>`: what every name of the bottle starts with. */
  readonly base: string
  readonly agent: string
  readonly bundle: string
  readonly internalNetwork: string
  readonly egressNetwork: string
  /**
   * The bottle's volumes, kept across stop/resume (docs/lifecycle.md): the workspace, its
   * copy-on-write layer and the overlay's scratch dir when it is an overlay of the cwd, the
   * agent's home.
   */
  readonly volumes: { readonly workspace: string; readonly upper: string; readonly scratch: string; readonly home: string }
  readonly labels: (role: BottleRole) => Record<string, string>
}

/** Everything the engine knows a bottle by: `bottle-<slug>-<root id>-<role>`, labelled slug, root, role. */
export const bottleNames = (root: string, slug: string): BottleNames => namesIn(stateRootId(root), slug)

/** The same, for a root whose id is known (a layer computes it once, not per engine call). */
export const namesIn = (rootId: string, slug: string): BottleNames => {
  const base = `bottle-${slug}-${rootId}`
  return {
    rootId,
    base,
    agent: `${base}-agent`,
    bundle: `${base}-bundle`,
    internalNetwork: `${base}-int`,
    egressNetwork: `${base}-ext`,
    volumes: { workspace: `${base}-work`, upper: `${base}-upper`, scratch: `${base}-scratch`, home: `${base}-home` },
    labels: (role) => ({ [LABEL_SLUG]: slug, [LABEL_ROOT]: rootId, [LABEL_ROLE]: role })
  }
}
