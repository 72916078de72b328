/**
 * Where the hub is: the page's own origin, since the hub serves the console. A development server
 * (`npx vite console`) sets FLIP_HUB_URL to reach a hub elsewhere.
 */
export const hubUrl: string = import.meta.env.FLIP_HUB_URL || window.location.origin;
