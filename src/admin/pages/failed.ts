import { taskPage } from './tasks.js';

/**
 * Failed tasks: view (the error is in `result`), delete, resubmit. Resubmitting enqueues a new task
 * and deletes the failure row in one transaction: either both happen or neither.
 */
export const failed = taskPage({ id: 'failed' });
