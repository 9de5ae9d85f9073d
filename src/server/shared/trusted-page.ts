import type { FastifyReply } from 'fastify';

/**
 * The headers of every page cardbridge serves itself (consent and PIN window, HiPKI popups and
 * self-test, NHI's trusted-service and auth pages): only its own scripts and styles, talking
 * only to itself, never framed (no clickjacking), no referrer, never cached.
 */
export const TRUSTED_PAGE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'";

export function trustedPage(reply: FastifyReply, type: string): FastifyReply {
  return reply
    .type(type)
    .header('Content-Security-Policy', TRUSTED_PAGE_CSP)
    .header('X-Frame-Options', 'DENY')
    .header('X-Content-Type-Options', 'nosniff')
    .header('Referrer-Policy', 'no-referrer')
    .header('Cache-Control', 'no-store');
}
