/**
 * "Go to": an id or exact name typed once, wherever it is. The box asks `api/find` which pages hold
 * it, opens the one page or lists them. Fetched when first opened and plain DOM, so it shares no
 * code with the pages and costs their first load nothing.
 */

/**
 * @param {(page: string) => string} title a page's title, from the registry
 */
export function openGoto(title) {
  /** @type {(tag: string, props?: Record<string, any>, ...kids: (Node | string)[]) => any} */
  const el = (tag, props = {}, ...kids) => {
    const e = Object.assign(document.createElement(tag), props);
    e.append(...kids);
    return e;
  };
  const d = el('dialog', { className: 'goto' });
  d.setAttribute('aria-labelledby', 'goto-title');
  const input = el('input', { id: 'goto-q', autocomplete: 'off', required: true, maxLength: 200 });
  const said = el('div', { role: 'status' });
  const form = el(
    'form',
    {},
    el('label', { htmlFor: 'goto-q' }, 'Task id or name, package id or schedule'),
    el('br'),
    input,
    el(
      'div',
      { className: 'buttons' },
      el('button', { type: 'submit', className: 'primary' }, 'Go'),
      el('button', { type: 'button', onclick: () => d.close() }, 'Cancel'),
    ),
  );
  d.append(el('h2', { id: 'goto-title' }, 'Go to'), form, said);
  d.onclose = () => d.remove();
  /** @param {{ page: string, id: string | number }} f */
  const link = (f) => (f.page === 'clusters' ? '#/clusters' : `#/${f.page}/${encodeURIComponent(String(f.id))}`);
  form.onsubmit = async (/** @type {Event} */ e) => {
    e.preventDefault();
    const q = input.value.trim();
    said.textContent = 'Looking…';
    try {
      const r = await fetch(new URL(`api/find?q=${encodeURIComponent(q)}`, document.baseURI), {
        credentials: 'same-origin',
        headers: { accept: 'application/json' },
      });
      const body = await r.json().catch(() => null);
      if (!r.ok) throw new Error(body?.error?.message ?? `The server answered ${r.status}.`);
      /** @type {{ page: string, id: string | number, name?: string | null }[]} */
      const found = body.found;
      if (found.length === 1) {
        d.close();
        location.hash = link(found[0]);
        return;
      }
      said.replaceChildren(
        found.length
          ? el(
              'ul',
              {},
              ...found.map((f) =>
                el('li', {}, el('a', { href: link(f), onclick: () => d.close() }, title(f.page)), f.name ? `: ${f.name}` : ''),
              ),
            )
          : `No task, package or schedule has the id or name “${q}”.`,
      );
    } catch (err) {
      said.replaceChildren(el('p', { className: 'error' }, /** @type {Error} */ (err).message));
    }
  };
  document.body.append(d);
  d.showModal();
  input.focus();
}
