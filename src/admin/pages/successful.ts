import { taskPage } from './tasks.js';

/** Successful tasks: view, delete, resubmit (a new task with the same func, args, kwargs, hook and group). */
export const successful = taskPage({ id: 'successful' });
