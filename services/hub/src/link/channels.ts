/** A stream became the owner of a trust's link (payload: "<trustId> <streamId>"); older streams end. */
export const LINK_OPENED_CHANNEL = "flip_link_opened";

export function encodeLinkOpened(trustId: string, streamId: string): string {
  return `${trustId} ${streamId}`;
}

export function decodeLinkOpened(payload: string): { trustId: string; streamId: string } | undefined {
  const [trustId, streamId] = payload.split(" ");
  return trustId && streamId ? { trustId, streamId } : undefined;
}
