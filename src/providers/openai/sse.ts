/**
 * Server-Sent Events decoding from a byte stream: UTF-8 decoded in streaming mode (a character split across
 * network reads stays whole), events separated by blank lines, `data:` lines joined, comments skipped.
 */
export class SseDecoder {
  private readonly decoder = new TextDecoder("utf-8");
  private buffer = "";
  private data: string[] = [];

  /** Adds bytes; returns the `data` of every event they completed. */
  push(bytes: Uint8Array): string[] {
    this.buffer += this.decoder.decode(bytes, { stream: true });
    const out: string[] = [];
    let nl = this.buffer.search(/\r\n|\r|\n/);
    while (nl >= 0) {
      const line = this.buffer.slice(0, nl);
      const skip = this.buffer.startsWith("\r\n", nl) ? 2 : 1;
      // A lone \r at the very end may be the first half of \r\n: wait for more.
      if (skip === 1 && this.buffer[nl] === "\r" && nl === this.buffer.length - 1) break;
      this.buffer = this.buffer.slice(nl + skip);
      this.line(line, out);
      nl = this.buffer.search(/\r\n|\r|\n/);
    }
    return out;
  }

  /** Ends the stream: an event not followed by a blank line still counts. */
  end(): string[] {
    const out: string[] = [];
    this.buffer += this.decoder.decode();
    if (this.buffer !== "") this.line(this.buffer, out);
    this.buffer = "";
    this.line("", out);
    return out;
  }

  private line(line: string, out: string[]): void {
    if (line === "") {
      if (this.data.length > 0) out.push(this.data.join("\n"));
      this.data = [];
      return;
    }
    if (line.startsWith(":")) return;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") this.data.push(value);
  }
}
