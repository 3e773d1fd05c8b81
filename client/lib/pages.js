/**
 * The admin's pages, in the order of the navigation: each page's title, the row actions of a list
 * page in the order of their buttons (what they are called comes from `api/meta`), and the code of
 * its list, its details and its form. That code loads when it is first shown, so the first load
 * carries the shell and one page (the whole client would exceed the 20 KB budget).
 * @typedef {() => Promise<any>} Load
 * @typedef {{ title: string, actions?: string[], list: Load, detail?: Load, form?: Load }} PageEntry
 */

const taskDetail = () => import('../pages/task-detail.js').then((m) => m.TaskDetailPage);

/** @type {Record<string, PageEntry>} */
export const PAGES = {
  '': { title: 'Overview', list: () => import('../pages/overview.js').then((m) => m.Overview) },
  successful: {
    title: 'Successful tasks',
    actions: ['resubmit', 'delete'],
    list: () => import('../pages/successful.js').then((m) => m.Successful),
    detail: taskDetail,
  },
  failed: {
    title: 'Failed tasks',
    actions: ['resubmit', 'delete'],
    list: () => import('../pages/failed.js').then((m) => m.Failed),
    detail: taskDetail,
  },
  scheduled: {
    title: 'Scheduled tasks',
    actions: ['pause', 'resume', 'run', 'delete'],
    list: () => import('../pages/scheduled.js').then((m) => m.Scheduled),
    detail: () => import('../pages/scheduled-detail.js').then((m) => m.ScheduleDetailPage),
    form: () => import('../pages/schedule-form.js').then((m) => m.ScheduleFormPage),
  },
  queued: {
    title: 'Queued tasks',
    actions: ['release', 'delete'],
    list: () => import('../pages/queued.js').then((m) => m.Queued),
    detail: () => import('../pages/queued-detail.js').then((m) => m.QueuedDetailPage),
  },
  clusters: { title: 'Clusters', list: () => import('../pages/clusters.js').then((m) => m.Clusters) },
  metrics: { title: 'Metrics', list: () => import('../pages/metrics.js').then((m) => m.Metrics) },
  activity: { title: 'Activity', list: () => import('../pages/activity.js').then((m) => m.Activity) },
};

/** Whether a page lists rows with actions on them (and has a search box). @param {string} page */
export const isListPage = (page) => Object.hasOwn(PAGES, page) && !!PAGES[page].actions;

/**
 * What a route shows: a page's form (`new`, `:id/edit`), one object's details (`:id`) or its list.
 * @param {string[]} path @returns {{ page: string, view: 'form' | 'detail' | 'list', load: Load } | null}
 */
export function viewOf(path) {
  const page = path[0] ?? '';
  // own pages only: #/constructor is no page
  if (!Object.hasOwn(PAGES, page)) return null;
  const entry = PAGES[page];
  if (entry.form && (path[1] === 'new' || path[2] === 'edit')) return { page, view: 'form', load: entry.form };
  if (entry.detail && path[1]) return { page, view: 'detail', load: entry.detail };
  return { page, view: 'list', load: entry.list };
}
