// The server's limits (generated; see scripts/gen-api.mjs). Import from here.
export { LIMITS } from './limits.gen';
