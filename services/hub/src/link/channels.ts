/** A stream became the owner of a trust's link (payload: a link ref, "<trustId> <streamId>"); older streams end. */
export const LINK_OPENED_CHANNEL = "flip_link_opened";

/**
 * A trust's link was released because no replica had recorded hearing from it (payload: a link ref): the
 * replica still holding that stream, if it is alive after all, closes it so the gateway dials again.
 */
export const LINK_RELEASED_CHANNEL = "flip_link_released";

/** A trust's stream, as the payload of the link channels. */
export function encodeLinkRef(trustId: string, streamId: string): string {
  return `${trustId} ${streamId}`;
}

export function decodeLinkRef(payload: string): { trustId: string; streamId: string } | undefined {
  const [trustId, streamId] = payload.split(" ");
  return trustId && streamId ? { trustId, streamId } : undefined;
}
