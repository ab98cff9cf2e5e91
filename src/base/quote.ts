/** Echoing user input into messages, without letting a hostile value make the message huge. */

/** A value as a JSON string literal, cut to `max` characters with its full length noted. */
export function quote(value: string, max = 80): string {
  if (value.length <= max) return JSON.stringify(value);
  return `${JSON.stringify(value.slice(0, max))}… (${value.length} characters)`;
}

/** The longest message an error carries to a client (gRPC sends it as a header, where 8 KiB is a common limit). */
export const MAX_MESSAGE_LENGTH = 1000;

/** A message cut to MAX_MESSAGE_LENGTH characters. */
export function capMessage(message: string): string {
  return message.length <= MAX_MESSAGE_LENGTH ? message : `${message.slice(0, MAX_MESSAGE_LENGTH - 30)}… (${message.length} characters in all)`;
}
