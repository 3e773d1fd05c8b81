/**
 * One object's page, for every list page's details: the way back to the list, the heading, the
 * actions the caller may use on it, its fields and its history. A page gives it what is its own:
 * how the object is named, which actions apply to it now, its fields' order and rendering, and
 * sections before and after the fields.
 */
import { html } from 'htm/preact';
import { useEffect } from 'preact/hooks';
import { ActionButtons, rowActions } from './bulk.js';
import { ErrorBox } from './detail.js';
import { Fields, History } from './fields.js';
import { useData } from '../lib/data.js';
import { notify } from '../lib/notice.js';
import { detailTitle, listHref, navigate } from '../lib/router.js';

/**
 * @param {{
 *   page: string, id: string, meta: any, title: string,
 *   name: (o: any) => string, missing: (data: any) => string,
 *   noun: (n: number) => string, said: (o: any, done: number) => string,
 *   applies?: (action: string, o: any) => boolean,
 *   onDone?: (a: import('./bulk.js').Action, o: any, said: string, done: number) => Promise<boolean | void>,
 *   order: string[], render?: Record<string, (v: any, o: any) => any>, skip?: (o: any) => string[],
 *   tools?: (o: any) => any, before?: (data: any) => any, after?: (data: any, reload: () => void) => any,
 * }} props
 */
export function ObjectDetail(props) {
  const { page, id, meta, title } = props;
  const { data, error, reload, loading } = useData(`${page}/${encodeURIComponent(id)}`);
  const o = data?.object;
  const name = o ? props.name(o) : null;
  useEffect(() => {
    if (name) detailTitle(name, title);
  }, [name]);
  const actions = o ? rowActions(meta, page).filter((a) => !props.applies || props.applies(a.action, o)) : [];
  return html`<article class="detail" aria-labelledby="page-title">
    <p class="back"><a href=${listHref(page)}>← ${title}</a></p>
    <div class="page-head">
      <h1 id="page-title">${name ?? props.missing(data)}</h1>
      ${o && props.tools?.(o)}
      ${
        o &&
        actions.length > 0 &&
        html`<${ActionButtons} page=${page} actions=${actions} count=${1} noun=${props.noun} quick
        target=${() => ({ ids: [o.id] })}
        onDone=${async (/** @type {any} */ a, /** @type {number} */ done) => {
          const said = `${a.past} ${props.said(o, done)}.`;
          // a page's own ending returns true when the object is gone
          const gone = props.onDone ? await props.onDone(a, o, said, done) : (notify(said), false);
          if (gone || a.action === 'delete') navigate(listHref(page));
          else reload();
        }} />`
      }
    </div>
    <${ErrorBox} error=${error} retry=${reload} busy=${loading} />
    ${props.before?.(data)}
    ${o && html`<${Fields} page=${page} id=${id} object=${o} truncated=${data.truncated} order=${props.order} render=${props.render} skip=${props.skip?.(o)} />`}
    ${o && props.after?.(data, reload)}
    ${data && html`<${History} history=${data.history} />`}
    ${!data && !error && html`<p class="loading">Loading…</p>`}
  </article>`;
}
