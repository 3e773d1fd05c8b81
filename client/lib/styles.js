/**
 * Styles only some pages use (the chart, Clusters, the forms) are files of their own, kept out of the first
 * load. A module that needs one awaits it before it is evaluated, so nothing is drawn unstyled. The
 * build replaces STYLES_CHART and the like with the files' content-hashed names.
 */

/** @type {Map<string, Promise<void>>} */
const loading = new Map();

/** @param {string} name a file next to this module once built */
export function styles(name) {
  let p = loading.get(name);
  if (!p) {
    p = new Promise((resolve, reject) => {
      const link = document.createElement('link');
      link.rel = 'stylesheet';
      // relative to the built modules, wherever the admin is mounted
      link.href = new URL(name, import.meta.url).href;
      link.onload = () => resolve();
      link.onerror = () => reject(new Error(`The styles ${name} could not be loaded`));
      document.head.append(link);
    });
    loading.set(name, p);
  }
  return p;
}
