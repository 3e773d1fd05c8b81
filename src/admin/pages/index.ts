/**
 * The admin's pages, in the order of its navigation. A page is one module here and one in the
 * client: its routes, actions and labels, and its part of the overview and of `api/meta`.
 */
import type { PageModule } from '../page.js';
import { activityPage } from './activity.js';
import { clusters } from './clusters.js';
import { failed } from './failed.js';
import { metricsPage } from './metrics.js';
import { queued } from './queued.js';
import { scheduled } from './scheduled.js';
import { successful } from './successful.js';

export const PAGES: readonly PageModule[] = [successful, failed, scheduled, queued, clusters, metricsPage, activityPage];
