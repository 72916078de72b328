import type { PageRequest } from "@flip/gen/flip/common/v1/common_pb.js";
import { InvalidInputError } from "./errors.js";

export interface Page {
  offset: number;
  limit: number;
}

/** Reads a page request (default 50, at most 500 items); a token not issued by us is InvalidInput. */
export function readPage(page: PageRequest | undefined, field = "page"): Page {
  const size = page?.pageSize ?? 0;
  if (size > 500) throw new InvalidInputError(`${field}.page_size`, "must be at most 500");
  const limit = size === 0 ? 50 : size;
  const token = page?.pageToken ?? "";
  if (token === "") return { offset: 0, limit };
  const m = /^o(\d{1,9})$/.exec(Buffer.from(token, "base64url").toString("utf8"));
  if (!m) throw new InvalidInputError(`${field}.page_token`, "is not a token from a previous response; start again without one");
  return { offset: Number(m[1]), limit };
}

/** The token for the page after `page`, or "" when `returned` shows there is none. */
export function nextPageToken(page: Page, returned: number): string {
  return returned < page.limit ? "" : Buffer.from(`o${page.offset + page.limit}`).toString("base64url");
}
