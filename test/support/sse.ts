/** One Server-Sent Event as received, with the time it arrived. */
export interface ReceivedEvent {
  event: string;
  data: any;
  at: number;
}

/**
 * Opens an SSE stream with fetch and collects its events in the background; `close()` ends the stream.
 * Comments (heartbeats) are skipped.
 */
export async function openEventStream(url: string, token: string) {
  const abort = new AbortController();
  const response = await fetch(url, { headers: { Authorization: token }, signal: abort.signal });
  const events: ReceivedEvent[] = [];
  const reading = (async () => {
    if (!response.ok || !response.body) return;
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buffer += value;
        let end: number;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let event = "message";
          const data: string[] = [];
          for (const line of block.split("\n")) {
            if (line.startsWith("event: ")) event = line.slice(7);
            else if (line.startsWith("data: ")) data.push(line.slice(6));
          }
          if (data.length) events.push({ event, data: JSON.parse(data.join("\n")), at: Date.now() });
        }
      }
    } catch {
      // aborted by close()
    }
  })();
  return {
    response,
    events,
    async close() {
      abort.abort();
      await reading;
    },
  };
}
