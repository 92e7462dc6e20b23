/**
 * The files of the egress daemon's dir (its subdir of the bottle's state, see the bundle
 * protocol), on the host or in the bundle:
 *
 *   <state root>/bottles/<slug>/egress/{routes.yaml, ca.pem, ca-key.pem, audit.log}
 *
 * (ca.pem and ca-key.pem: src/schema/BottleCa.ts; the state root: the StateStore.)
 */
import * as path from "node:path"
import { DAEMONS, hostDirOf } from "../../src/schema/BundleProtocol.ts"

export const egressDir = (root: string, slug: string): string => hostDirOf(path.join(root, "bottles", slug), DAEMONS.egress)

export const routesFileIn = (dir: string): string => path.join(dir, "routes.yaml")
export const auditLogIn = (dir: string): string => path.join(dir, "audit.log")
