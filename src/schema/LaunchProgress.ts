/**
 * Launch progress as data: the closed set of steps `launch` goes through, and the events it
 * reports (a step began; a line of image-build output). The CLI renders them (src/cli/progress.ts);
 * a dashboard or `--json` output can consume the same events.
 */
import { Schema } from "effect"

export const LaunchStep = Schema.Literals([
  "state",
  "lease",
  "ca",
  "deploy-keys",
  "images",
  "network",
  "bundle",
  /** The bundle runs; waiting for its daemons to report ready. */
  "bundle:ready",
  "sandbox",
  /** The sandbox runs; copying the workspace and provisioning (CA, prompt, skills). */
  "provision",
  /** Both run; probing from inside the sandbox that only the bundle is reachable. */
  "probe",
  "attach"
])
export type LaunchStep = typeof LaunchStep.Type

export const ProgressEvent = Schema.Union([
  Schema.TaggedStruct("Step", { step: LaunchStep }),
  /** Output of an image build (one line), shown as detail under the images step. */
  Schema.TaggedStruct("BuildOutput", { line: Schema.String })
])
export type ProgressEvent = typeof ProgressEvent.Type
