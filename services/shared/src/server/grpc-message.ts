/**
 * The `grpc-message` value for a status message, percent-encoded the way the gRPC HTTP/2 spec says:
 * only `%` and bytes outside printable ASCII (0x20–0x7E) are escaped. Connect escapes every reserved
 * character (`encodeURIComponent`), but grpc-js decodes with `decodeURI`, which leaves `%2C`, `%3A`,
 * `%2F`… as they are: its users would read "expired%2C revoked". Both decoders read this encoding back.
 */
export function encodeGrpcMessage(message: string): string {
  let out = "";
  for (const byte of Buffer.from(message, "utf8")) {
    out += byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/** Re-encodes a `grpc-message` Connect wrote (with `encodeURIComponent`) so that every gRPC client shows it as it was. */
export function reencodeGrpcMessage(headers: Headers): void {
  const written = headers.get("grpc-message");
  if (written === null) return;
  let message: string;
  try {
    message = decodeURIComponent(written);
  } catch {
    return;
  }
  headers.set("grpc-message", encodeGrpcMessage(message));
}
