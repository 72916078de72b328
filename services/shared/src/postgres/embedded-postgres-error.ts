/** The embedded PostgreSQL server cannot start; the message says, in one line, what to do. */
export class EmbeddedPostgresError extends Error {
  override readonly name = "EmbeddedPostgresError";

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
