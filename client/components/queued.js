/** What the Queued tasks list and a package's detail share. */

/** @type {import('./bulk.js').Action[]} */
export const ACTIONS = [
  { action: 'release', label: 'Release', past: 'Released' },
  { action: 'delete', label: 'Delete', past: 'Deleted', danger: true },
];

