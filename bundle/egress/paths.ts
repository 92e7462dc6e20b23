/**
 * Where a bottle's egress state lives on the host. The launch program, `bottle egress
 * allow|deny` and `bottle logs --egress` all resolve it here, so they agree.
 *
 *   <state root>/bottles/<slug>/egress/{routes.yaml, ca.pem, ca-key.pem, audit.log}
 */
import * as os from "node:os"
import * as path from "node:path"

/** `$BOTTLE_STATE_DIR`, else `$XDG_STATE_HOME/bot-bottle`, else `~/.local/state/bot-bottle`. */
export const stateRoot = (env: Record<string, string | undefined> = process.env): string =>
  env["BOTTLE_STATE_DIR"] ||
  (env["XDG_STATE_HOME"] ? path.join(env["XDG_STATE_HOME"], "bot-bottle") : path.join(os.homedir(), ".local", "state", "bot-bottle"))

export const egressDir = (root: string, slug: string): string => path.join(root, "bottles", slug, "egress")

export const routesFileIn = (dir: string): string => path.join(dir, "routes.yaml")
export const caCertIn = (dir: string): string => path.join(dir, "ca.pem")
export const caKeyIn = (dir: string): string => path.join(dir, "ca-key.pem")
export const auditLogIn = (dir: string): string => path.join(dir, "audit.log")
