import { fileURLToPath } from 'node:url';
import express, { Router } from 'express';
import swaggerUi from 'swagger-ui-dist';

const PAGE = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>askq API reference</title>
    <link rel="stylesheet" href="/docs/assets/swagger-ui.css" />
  </head>
  <body>
    <div id="reference"></div>
    <script src="/docs/assets/swagger-ui-bundle.js"></script>
    <script src="/docs/reference.js"></script>
  </body>
</html>
`;
// Kept in its own file rather than inline, so a strict Content-Security-Policy needs no exception.
const BOOT = `window.ui = SwaggerUIBundle({ url: '/openapi.json', dom_id: '#reference', deepLinking: true });\n`;

/** `/openapi.json`, the interactive reference at `/docs`, and the demo page at `/`. */
export function docsRoutes(document: Record<string, unknown>): Router {
  const router = Router();
  router.get('/openapi.json', (_req, res) => {
    res.json(document);
  });
  router.get('/docs', (_req, res) => {
    res.type('html').send(PAGE);
  });
  router.get('/docs/reference.js', (_req, res) => {
    res.type('js').send(BOOT);
  });
  // Served from the package, so the page works offline and needs no build step.
  router.use('/docs/assets', express.static(swaggerUi.getAbsoluteFSPath(), { index: false }));
  // The demo page: static files, no build step at run time. Not for API paths: each GET there
  // (a stream, a status) would pay a file-system lookup first, 2% of the API's CPU under load.
  const page = express.static(fileURLToPath(new URL('../../public', import.meta.url)));
  router.use((req, res, next) => (req.path.startsWith('/v1/') ? next() : page(req, res, next)));
  return router;
}
