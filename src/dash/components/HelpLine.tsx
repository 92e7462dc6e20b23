/** The help line at the bottom: the keys of the current view. */
import { Text } from "ink"
import { fit } from "../model.ts"

export const HELP = {
  list: "↑↓ enter:detail s:start x:stop X:stop+purge o:terminal c:dismiss q:quit",
  detail: "↑↓ a:approve d:deny o:terminal x/X:stop esc:back c:dismiss q:quit",
  modal: "y:confirm n/esc:cancel ↑↓:scroll",
  progress: "launching… (esc hides when done)",
  note: "type a note, enter:send esc:cancel"
} as const

export const HelpLine = (props: { readonly mode: keyof typeof HELP; readonly width: number }) => <Text dimColor>{fit(HELP[props.mode], props.width)}</Text>
