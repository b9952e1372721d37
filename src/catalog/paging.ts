// Page sizes and the insights window, in one place: the store's limits, and the narrower ones
// the JSON API and the browser UI accept.
export const DEFAULT_PAGE_SIZE = 50;
/** The most items one store query returns. */
export const STORE_MAX_PAGE_SIZE = 1000;
/** The most items one JSON API page holds (?limit=). */
export const API_MAX_PAGE_SIZE = 500;
/** The most rows one browser page shows (?limit=). */
export const UI_MAX_PAGE_SIZE = 200;
/** The longest insights window, in weeks. */
export const MAX_INSIGHT_WEEKS = 520;
/** Entries of a tag's history per page (the API and the tag page). */
export const HISTORY_PAGE_SIZE = 50;
