// Offset pagination as GitLab's REST API answers it.
// https://docs.gitlab.com/api/rest/#offset-based-pagination: `page` (default 1) and `per_page`
// (default 20, at most 100).
// https://docs.gitlab.com/api/rest/#pagination-link-header: Link with rel prev, next, first and
// last, each the request URL with its page changed.
// https://docs.gitlab.com/api/rest/#other-pagination-headers: x-next-page, x-page, x-per-page,
// x-prev-page, x-total, x-total-pages (next and prev empty when there is none).

export const DEFAULT_PER_PAGE = 20;
export const MAX_PER_PAGE = 100;

export interface PageResult<T> {
  items: T[];
  headers: Record<string, string>;
}

function positive(value: string | null, fallback: number): number {
  if (value === null || !/^\d+$/.test(value.trim())) return fallback;
  const n = Number(value);
  return n >= 1 ? n : fallback;
}

/**
 * One page of `all` for the request URL (its origin as the client reached it). `cap` lowers the
 * largest per_page (a test knob for many pages from few items; GitLab's own cap is 100).
 */
export function paginate<T>(all: readonly T[], url: URL, cap = MAX_PER_PAGE): PageResult<T> {
  const perPage = Math.min(positive(url.searchParams.get('per_page'), DEFAULT_PER_PAGE), cap, MAX_PER_PAGE);
  const page = positive(url.searchParams.get('page'), 1);
  const totalPages = Math.max(1, Math.ceil(all.length / perPage));
  const items = all.slice((page - 1) * perPage, page * perPage);
  const at = (p: number): string => {
    const u = new URL(url);
    u.searchParams.set('page', String(p));
    u.searchParams.set('per_page', String(perPage));
    return u.toString();
  };
  const links: string[] = [];
  if (page > 1) links.push(`<${at(Math.min(page - 1, totalPages))}>; rel="prev"`);
  if (page < totalPages) links.push(`<${at(page + 1)}>; rel="next"`);
  links.push(`<${at(1)}>; rel="first"`, `<${at(totalPages)}>; rel="last"`);
  return {
    items,
    headers: {
      link: links.join(', '),
      'x-next-page': page < totalPages ? String(page + 1) : '',
      'x-page': String(page),
      'x-per-page': String(perPage),
      'x-prev-page': page > 1 ? String(Math.min(page - 1, totalPages)) : '',
      'x-total': String(all.length),
      'x-total-pages': String(totalPages),
    },
  };
}
