/** PocketBase's date format: `YYYY-MM-DD hh:mm:ss.123Z`, UTC. */
export function formatPbDate(date: Date): string {
  return date.toISOString().replace("T", " ");
}
