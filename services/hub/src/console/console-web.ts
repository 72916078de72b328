import type * as http from "node:http";
import type * as http2 from "node:http2";
import * as path from "node:path";
import { cors } from "@connectrpc/connect";
import type { Logger } from "@flip/shared/logging/logger.js";
import type { WebRequestHook } from "@flip/shared/server/node-handler.js";
import type { ConsoleConfig } from "./console-config.js";
import { StaticFiles, type StaticFile } from "./static-files.js";

type Req = http.IncomingMessage | http2.Http2ServerRequest;
type Res = http.ServerResponse | http2.Http2ServerResponse;

export interface ConsoleWebOptions {
  config: ConsoleConfig;
  /** Served over TLS: browsers are told to keep to HTTPS (HSTS). */
  tls: boolean;
  /** Origins besides the hub the console's pages may call (the single sign-on provider's token endpoint). */
  connectOrigins: () => string[];
  log: Logger;
}

/** Response headers of the hub's own error and answer codes the console reads across origins. */
const EXPOSED_HEADERS = [...cors.exposedHeaders, "flip-totp-required", "retry-after"];
const ALLOWED_HEADERS = [...cors.allowedHeaders, "authorization"];

/**
 * The web console on the hub's own address, beside its RPCs: GET of any path that is not an RPC
 * answers with the console (its files under /assets/, else index.html, whose router shows the page),
 * with a strict Content-Security-Policy and the usual hardening headers. RPC calls from the origins in
 * FLIP_CONSOLE_ORIGINS (a development server) get CORS headers; the hub's own pages need none.
 */
export function consoleWeb(opts: ConsoleWebOptions): WebRequestHook {
  const files = new StaticFiles(opts.config.dir);
  const allowed = new Set(opts.config.allowedOrigins);
  let warnedMissing = false;

  const securityHeaders = (res: Res) => {
    const connect = ["'self'", ...opts.connectOrigins()].join(" ");
    res.setHeader(
      "content-security-policy",
      `default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; font-src 'self'; connect-src ${connect}; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'`,
    );
    res.setHeader("x-content-type-options", "nosniff");
    res.setHeader("x-frame-options", "DENY");
    res.setHeader("referrer-policy", "no-referrer");
    res.setHeader("cross-origin-opener-policy", "same-origin");
    res.setHeader("cross-origin-resource-policy", "same-origin");
    res.setHeader("permissions-policy", "camera=(), microphone=(), geolocation=(), usb=(), payment=()");
    if (opts.tls) res.setHeader("strict-transport-security", "max-age=31536000");
  };

  const send = (req: Req, res: Res, file: StaticFile, cacheControl: string) => {
    securityHeaders(res);
    res.setHeader("content-type", file.contentType);
    res.setHeader("cache-control", cacheControl);
    res.setHeader("etag", file.etag);
    res.setHeader("vary", "accept-encoding");
    if (req.headers["if-none-match"] === file.etag) {
      res.statusCode = 304;
      res.end();
      return;
    }
    const gzip = file.gzipped !== undefined && /\bgzip\b/.test(String(req.headers["accept-encoding"] ?? ""));
    const body = gzip ? file.gzipped! : file.body;
    if (gzip) res.setHeader("content-encoding", "gzip");
    res.setHeader("content-length", body.length);
    res.statusCode = 200;
    if (req.method === "HEAD") res.end();
    else res.end(body);
  };

  const notBuilt = (res: Res) => {
    if (!warnedMissing) {
      opts.log.warn({ dir: opts.config.dir }, "the web console is not built: GET / explains how to build it (npm run build:console)");
      warnedMissing = true;
    }
    securityHeaders(res);
    res.statusCode = 503;
    res.setHeader("content-type", "text/html; charset=utf-8");
    res.setHeader("cache-control", "no-store");
    res.end(
      `<!doctype html><html lang="en"><meta charset="utf-8"><title>FLIP console not built</title>` +
        `<h1>The FLIP console is not built</h1><p>This hub serves its web console from <code>${escapeHtml(opts.config.dir)}</code>, which has no <code>index.html</code>. ` +
        `Run <code>npm run build:console</code> in the repository (<code>npm start</code> does it for you), or set <code>FLIP_CONSOLE_DIR</code> to a built console.</p>` +
        `<p>The hub's RPCs work without it (the <code>flip</code> CLI, Connect and gRPC clients).</p></html>`,
    );
  };

  const serveConsole = async (req: Req, res: Res) => {
    const urlPath = (req.url ?? "/").split("?", 1)[0]!;
    if (urlPath.startsWith("/assets/")) {
      const asset = await files.get(urlPath);
      // Built file names carry their content hash: cached for a year, never revalidated.
      if (asset) return send(req, res, asset, "public, max-age=31536000, immutable");
      res.statusCode = 404;
      res.setHeader("content-type", "text/plain; charset=utf-8");
      return res.end("no such console file; reload the page to get the current console\n");
    }
    const own = path.extname(urlPath) !== "" ? await files.get(urlPath) : undefined;
    if (own) return send(req, res, own, "no-cache");
    const index = await files.get("/index.html");
    if (!index) return notBuilt(res);
    send(req, res, index, "no-cache");
  };

  return (req, res, isRpc) => {
    const origin = req.headers.origin;
    const crossOrigin = typeof origin === "string" && allowed.has(origin);
    if (isRpc) {
      if (crossOrigin) {
        res.setHeader("access-control-allow-origin", origin);
        res.setHeader("access-control-expose-headers", EXPOSED_HEADERS.join(", "));
        res.setHeader("vary", "origin");
      }
      if (req.method !== "OPTIONS") return false;
      // A CORS preflight: allowed origins get the methods and headers Connect and gRPC-Web use.
      res.statusCode = crossOrigin ? 204 : 403;
      if (crossOrigin) {
        res.setHeader("access-control-allow-methods", cors.allowedMethods.join(", "));
        res.setHeader("access-control-allow-headers", ALLOWED_HEADERS.join(", "));
        res.setHeader("access-control-max-age", "7200");
      }
      res.end();
      return true;
    }
    if (req.method !== "GET" && req.method !== "HEAD") return false;
    serveConsole(req, res).catch((e: unknown) => {
      opts.log.error({ err: e, url: req.url }, "serving the web console failed");
      if (!res.headersSent) res.statusCode = 500;
      res.end();
    });
    return true;
  };
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
